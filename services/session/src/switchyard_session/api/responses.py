"""``/v1/responses``: the gateway records finished turns; retrieve, delete, input items."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from switchyard_common.errors import json_response
from switchyard_common.internal_calls import TenantDep
from switchyard_session.api.deps import PageDep, StoreDep, WriteDep

router = APIRouter(prefix="/v1/responses", tags=["responses"])


class StoredItem(BaseModel, extra="allow"):
    id: str = Field(min_length=1, max_length=64)
    type: str = "message"


class TurnRecord(BaseModel):
    """A finished turn, as the gateway sends it: the Response object (its ``output`` and
    ``conversation`` included), the turn's new input items, and their token counts."""

    response: dict[str, Any]
    input_items: list[StoredItem] = Field(default_factory=list)
    store: bool = True
    # Token counts by item id, per model: {"msg_…": {"<model>": 12}}.
    tokens: dict[str, dict[str, int]] = Field(default_factory=dict)


@router.post("")
async def record_turn(body: TurnRecord, write: WriteDep) -> Response:
    return json_response(
        await write.store.store_response(
            write.tenant,
            body.response,
            [item.model_dump() for item in body.input_items],
            store=body.store,
            tokens=body.tokens,
            idempotency_key=write.key,
        )
    )


@router.get("/{response_id}")
async def retrieve_response(response_id: str, store: StoreDep, tenant: TenantDep) -> Response:
    return json_response(await store.get_response(tenant, response_id))


@router.delete("/{response_id}")
async def delete_response(response_id: str, store: StoreDep, tenant: TenantDep) -> Response:
    return json_response(await store.delete_response(tenant, response_id))


@router.get("/{response_id}/input_items")
async def list_input_items(
    response_id: str, page: PageDep, store: StoreDep, tenant: TenantDep
) -> Response:
    return json_response(
        await store.list_input_items(
            tenant, response_id, after=page.after, limit=page.limit, order=page.order
        )
    )
