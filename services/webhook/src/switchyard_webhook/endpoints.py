"""Webhook endpoints of a tenant: create, page through, read, change, delete, rotate secrets.

Every query is scoped to the tenant; another tenant's id reads as not found.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_common.errors import NotFoundError
from switchyard_webhook.signing import new_secret, secret_hint
from switchyard_webhook.tables import endpoints

Row = Mapping[Any, Any]


def new_endpoint_id() -> str:
    return "we_" + secrets.token_hex(12)


def endpoint_json(row: Row, *, with_secret: bool = False) -> dict[str, Any]:
    """The ``WebhookEndpoint`` (or ``WebhookEndpointWithSecret``) shape of a row."""
    body: dict[str, Any] = {
        "id": row["id"],
        "object": "webhook_endpoint",
        "created_at": int(row["created_at"]),
        "updated_at": int(row["updated_at"]),
        "name": row["name"],
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "signing_secret_hint": secret_hint(row["secret"]),
        # Switchyard extensions:
        "status": row["status"],
        "disabled_reason": row["disabled_reason"],
    }
    if with_secret:
        body["signing_secret"] = row["secret"]
    return body


def not_found(endpoint_id: str) -> NotFoundError:
    return NotFoundError(f"No webhook endpoint found with id '{endpoint_id}'.")


async def create(
    conn: AsyncConnection, tenant: str, name: str, url: str, event_types: list[str], now: float
) -> Row:
    row = {
        "id": new_endpoint_id(),
        "tenant": tenant,
        "name": name,
        "url": url,
        "event_types": event_types,
        "status": "enabled",
        "secret": new_secret(),
        "previous_secret": None,
        "previous_secret_expires_at": None,
        "consecutive_failures": 0,
        "failing_since": None,
        "disabled_reason": None,
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(endpoints.insert().values(**row))
    return row


async def get(conn: AsyncConnection, tenant: str, endpoint_id: str) -> Row:
    result = await conn.execute(
        select(endpoints).where(endpoints.c.tenant == tenant, endpoints.c.id == endpoint_id)
    )
    row = result.mappings().first()
    if row is None:
        raise not_found(endpoint_id)
    return row


async def page(
    conn: AsyncConnection, tenant: str, after: str | None, limit: int
) -> tuple[list[Row], bool]:
    """Newest first; ``after`` is the last id of the previous page. Returns (rows, has_more)."""
    query = select(endpoints).where(endpoints.c.tenant == tenant)
    if after is not None:
        cursor = await get(conn, tenant, after)
        query = query.where(
            or_(
                endpoints.c.created_at < cursor["created_at"],
                and_(endpoints.c.created_at == cursor["created_at"], endpoints.c.id < after),
            )
        )
    query = query.order_by(endpoints.c.created_at.desc(), endpoints.c.id.desc()).limit(limit + 1)
    rows: list[Row] = list((await conn.execute(query)).mappings())
    return rows[:limit], len(rows) > limit


async def change(
    conn: AsyncConnection, tenant: str, endpoint_id: str, values: dict[str, Any], now: float
) -> Row:
    """Apply ``values``; ``updated_at`` moves only when something actually changed."""
    current = await get(conn, tenant, endpoint_id)
    changed = {k: v for k, v in values.items() if current[k] != v}
    if changed:
        if changed.get("status") == "enabled":
            changed |= {"consecutive_failures": 0, "failing_since": None, "disabled_reason": None}
        await conn.execute(
            update(endpoints)
            .where(endpoints.c.tenant == tenant, endpoints.c.id == endpoint_id)
            .values(**changed, updated_at=now)
        )
    return await get(conn, tenant, endpoint_id)


async def remove(conn: AsyncConnection, tenant: str, endpoint_id: str) -> None:
    result = await conn.execute(
        delete(endpoints).where(endpoints.c.tenant == tenant, endpoints.c.id == endpoint_id)
    )
    if result.rowcount == 0:
        raise not_found(endpoint_id)


async def rotate_secret(
    conn: AsyncConnection, tenant: str, endpoint_id: str, grace_seconds: float | None, now: float
) -> Row:
    """A new secret; the old one keeps signing for ``grace_seconds`` (None: stops at once)."""
    current = await get(conn, tenant, endpoint_id)
    keep = grace_seconds is not None and grace_seconds > 0
    await conn.execute(
        update(endpoints)
        .where(endpoints.c.tenant == tenant, endpoints.c.id == endpoint_id)
        .values(
            secret=new_secret(),
            previous_secret=current["secret"] if keep else None,
            previous_secret_expires_at=now + grace_seconds if keep and grace_seconds else None,
            updated_at=now,
        )
    )
    return await get(conn, tenant, endpoint_id)


def signing_secrets(row: Row, now: float) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    while its grace period lasts."""
    found = [row["secret"]]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret"] and expires is not None and expires > now:
        found.append(row["previous_secret"])
    return found
