"""Switchyard extensions under /v1/webhook_endpoints/{id}: deliveries, and replays."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from switchyard_common.errors import InvalidRequestError
from switchyard_common.internal_calls import TenantDep, require_internal_token
from switchyard_webhook import deliveries, endpoints
from switchyard_webhook.api.deps import (
    DbDep,
    DispatcherDep,
    NowDep,
)
from switchyard_webhook.api.pages import list_page

router = APIRouter(tags=["webhook deliveries"], dependencies=[Depends(require_internal_token)])
PREFIX = "/v1/webhook_endpoints/{endpoint_id}"
Status = Literal["pending", "delivering", "succeeded", "dead_letter"]


class ReplayRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Unix seconds: deliveries created in [since, until) are sent again (until: now).
    since: float
    until: float | None = None
    # Only deliveries of this status (e.g. dead_letter); unset: all.
    status: Status | None = None


@router.get(PREFIX + "/deliveries")
async def list_deliveries(
    endpoint_id: str,
    tenant: TenantDep,
    db: DbDep,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
    status: Status | None = None,
) -> dict[str, Any]:
    async with db.read() as conn:
        await endpoints.get(conn, tenant, endpoint_id)
        rows, has_more = await deliveries.page(conn, tenant, endpoint_id, after, limit, status)
    return list_page([deliveries.delivery_json(r) for r in rows], has_more)


@router.get(PREFIX + "/deliveries/{delivery_id}")
async def retrieve_delivery(
    endpoint_id: str, delivery_id: str, tenant: TenantDep, db: DbDep
) -> dict[str, Any]:
    async with db.read() as conn:
        await endpoints.get(conn, tenant, endpoint_id)
        row = await deliveries.get(conn, tenant, endpoint_id, delivery_id)
    return deliveries.delivery_json(row)


@router.post(PREFIX + "/deliveries/{delivery_id}/replay")
async def replay_delivery(
    endpoint_id: str,
    delivery_id: str,
    tenant: TenantDep,
    db: DbDep,
    dispatcher: DispatcherDep,
    now: NowDep,
) -> dict[str, Any]:
    """Send the delivery's event again (a new delivery, the same webhook-id)."""
    async with db.write() as conn:
        await endpoints.get(conn, tenant, endpoint_id)
        row = await deliveries.replay_one(conn, tenant, endpoint_id, delivery_id, now)
    if dispatcher is not None:
        dispatcher.wake()
    return deliveries.delivery_json(row)


@router.post(PREFIX + "/replay")
async def replay_range(
    endpoint_id: str,
    body: ReplayRange,
    tenant: TenantDep,
    db: DbDep,
    dispatcher: DispatcherDep,
    now: NowDep,
) -> dict[str, Any]:
    until = body.until if body.until is not None else now
    if until <= body.since:
        raise InvalidRequestError("until must be later than since.", param="until")
    async with db.write() as conn:
        await endpoints.get(conn, tenant, endpoint_id)
        count = await deliveries.replay_range(
            conn, tenant, endpoint_id, body.since, until, body.status, now
        )
    if dispatcher is not None:
        dispatcher.wake()
    return {"object": "webhook_endpoint.replay", "webhook_endpoint_id": endpoint_id,
            "replayed": count}  # fmt: skip
