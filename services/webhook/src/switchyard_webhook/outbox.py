"""The transactional outbox: an event and one delivery per subscribed endpoint, written in
the caller's transaction, so an event acknowledged is an event committed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_webhook.tables import deliveries, endpoints, events


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def new_delivery_id() -> str:
    return "whd_" + secrets.token_hex(12)


def event_payload(event_id: str, event_type: str, data: dict[str, Any], created_at: int) -> str:
    """The body every delivery of the event sends: OpenAI's webhook event shape."""
    body = {
        "id": event_id,
        "object": "event",
        "created_at": created_at,
        "type": event_type,
        "data": data,
    }
    return orjson.dumps(body).decode()


@dataclass(frozen=True)
class Published:
    event_id: str
    deliveries: int
    duplicate: bool = False


def delivery_row(tenant: str, event_id: str, endpoint_id: str, now: float) -> dict[str, Any]:
    """A new delivery of ``event_id`` to ``endpoint_id``, due at once."""
    return {
        "id": new_delivery_id(),
        "tenant": tenant,
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


async def publish(
    conn: AsyncConnection,
    tenant: str,
    event_type: str,
    data: dict[str, Any],
    now: float,
    event_id: str | None = None,
) -> Published:
    """Store the event and a delivery to each enabled endpoint of ``tenant`` subscribed to
    its type. An ``event_id`` already stored is acknowledged again, not stored twice (a
    publisher retrying after a lost answer)."""
    if event_id is not None:
        seen = await conn.execute(select(events.c.id).where(events.c.id == event_id))
        if seen.first() is not None:
            return Published(event_id, 0, duplicate=True)
    event_id = event_id or new_event_id()
    payload = event_payload(event_id, event_type, data, int(now))
    await conn.execute(
        events.insert().values(
            id=event_id, tenant=tenant, type=event_type, payload=payload, created_at=now
        )
    )
    result = await conn.execute(
        select(endpoints.c.id, endpoints.c.event_types).where(
            endpoints.c.tenant == tenant, endpoints.c.status == "enabled"
        )
    )
    targets = [row.id for row in result if event_type in row.event_types]
    if targets:
        await conn.execute(
            deliveries.insert(), [delivery_row(tenant, event_id, t, now) for t in targets]
        )
    return Published(event_id, len(targets))
