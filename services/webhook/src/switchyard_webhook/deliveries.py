"""Deliveries of a tenant's endpoint: page through them, replay one or a time range.

A replay is a new delivery of the same event, so it carries the same ``webhook-id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_common.errors import NotFoundError
from switchyard_webhook.outbox import delivery_row
from switchyard_webhook.tables import deliveries, events

Row = Mapping[Any, Any]
_COLUMNS = (*deliveries.c, events.c.type.label("event_type"))


def delivery_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "webhook_endpoint.delivery",
        "webhook_endpoint_id": row["endpoint_id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "response_status_code": row["last_status_code"],
        "latency_ms": row["last_latency_ms"],
        "error": row["last_error"],
        "created_at": int(row["created_at"]),
        "updated_at": int(row["updated_at"]),
        "next_attempt_at": int(row["next_attempt_at"])
        if row["status"] in ("pending", "delivering")
        else None,
    }


def _of_endpoint(tenant: str, endpoint_id: str) -> Any:
    return (
        select(*_COLUMNS)
        .join(events, events.c.id == deliveries.c.event_id)
        .where(deliveries.c.tenant == tenant, deliveries.c.endpoint_id == endpoint_id)
    )


async def get(conn: AsyncConnection, tenant: str, endpoint_id: str, delivery_id: str) -> Row:
    query = _of_endpoint(tenant, endpoint_id).where(deliveries.c.id == delivery_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFoundError(f"No delivery found with id '{delivery_id}'.")
    return row


async def page(
    conn: AsyncConnection,
    tenant: str,
    endpoint_id: str,
    after: str | None,
    limit: int,
    status: str | None = None,
) -> tuple[list[Row], bool]:
    """Newest first, optionally of one status; ``after`` is the previous page's last id."""
    query = _of_endpoint(tenant, endpoint_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if after is not None:
        cursor = await get(conn, tenant, endpoint_id, after)
        query = query.where(
            or_(
                deliveries.c.created_at < cursor["created_at"],
                and_(deliveries.c.created_at == cursor["created_at"], deliveries.c.id < after),
            )
        )
    query = query.order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
    rows: list[Row] = list((await conn.execute(query.limit(limit + 1))).mappings())
    return rows[:limit], len(rows) > limit


async def replay_one(
    conn: AsyncConnection, tenant: str, endpoint_id: str, delivery_id: str, now: float
) -> Row:
    old = await get(conn, tenant, endpoint_id, delivery_id)
    row = delivery_row(tenant, old["event_id"], endpoint_id, now)
    await conn.execute(deliveries.insert().values(**row))
    return await get(conn, tenant, endpoint_id, row["id"])


async def replay_range(
    conn: AsyncConnection,
    tenant: str,
    endpoint_id: str,
    since: float,
    until: float,
    status: str | None,
    now: float,
) -> int:
    """Deliver again each event whose delivery to the endpoint was created in
    [since, until) (of ``status`` when given); returns how many were queued."""
    query = (
        select(deliveries.c.event_id)
        .where(
            deliveries.c.tenant == tenant,
            deliveries.c.endpoint_id == endpoint_id,
            deliveries.c.created_at >= since,
            deliveries.c.created_at < until,
        )
        .distinct()
    )
    if status is not None:
        query = query.where(deliveries.c.status == status)
    event_ids = [r.event_id for r in await conn.execute(query)]
    if event_ids:
        rows = [delivery_row(tenant, e, endpoint_id, now) for e in event_ids]
        await conn.execute(deliveries.insert(), rows)
    return len(event_ids)
