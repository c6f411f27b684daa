"""Background responses: the gateway queues them, its runners claim, renew and finish them
and the gateway cancels them for callers (all under ``/internal/v1/responses``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from switchyard_common.errors import json_response
from switchyard_common.internal_calls import TenantDep
from switchyard_session.api.deps import StoreDep
from switchyard_session.api.responses import StoredItem
from switchyard_session.config import SessionSettings

router = APIRouter(tags=["background"])
INTERNAL = "/internal/v1/responses"


class Queued(BaseModel):
    response: dict[str, Any]
    request: dict[str, Any]


class Lease(BaseModel):
    owner: str = Field(min_length=1, max_length=255)
    lease_seconds: float = Field(gt=0, le=3600)


class Finished(BaseModel):
    owner: str = Field(min_length=1, max_length=255)
    response: dict[str, Any]
    input_items: list[StoredItem] = Field(default_factory=list)


@router.post(INTERNAL)
async def queue_response(body: Queued, store: StoreDep, tenant: TenantDep) -> Response:
    return json_response(await store.queue_response(tenant, body.response, body.request))


@router.post(f"{INTERNAL}/claim")
async def claim_response(body: Lease, store: StoreDep, request: Request) -> Response:
    settings: SessionSettings = request.app.state.settings
    claim = await store.claim(body.owner, body.lease_seconds, settings.background_max_attempts)
    return json_response(claim.body())


@router.post(f"{INTERNAL}/{{response_id}}/renew")
async def renew_lease(response_id: str, body: Lease, store: StoreDep) -> Response:
    status = await store.renew(response_id, body.owner, body.lease_seconds)
    return json_response({"status": status, "owned": status is not None})


@router.post(f"{INTERNAL}/{{response_id}}/release")
async def release_response(response_id: str, body: Lease, store: StoreDep) -> Response:
    return json_response({"released": await store.release(response_id, body.owner)})


@router.post(f"{INTERNAL}/{{response_id}}/finish")
async def finish_response(response_id: str, body: Finished, store: StoreDep) -> Response:
    items = [item.model_dump() for item in body.input_items]
    return json_response(
        {"finished": await store.finish(response_id, body.owner, body.response, items)}
    )


@router.post(f"{INTERNAL}/{{response_id}}/cancel")
async def cancel_response(response_id: str, store: StoreDep, tenant: TenantDep) -> Response:
    """The response, and whether this call cancelled it (false: it had ended already)."""
    response, cancelled = await store.cancel_response(tenant, response_id)
    return json_response({"response": response, "cancelled": cancelled})
