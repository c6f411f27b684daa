"""``Idempotency-Key``: a retried POST gets the first result back, with no second write.

The key is recorded in the same transaction as the write it guards, so either both are
committed or neither; of two concurrent requests with one key, the second's insert of the key
fails, its write rolls back, and it answers the first's result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_session.db import Database
from switchyard_session.schema import idempotency

Body = dict[str, Any]
Write = Callable[[AsyncConnection], Awaitable[Body]]


async def _recorded(conn: AsyncConnection, tenant: str, key: str) -> tuple[bool, Body]:
    row = (
        await conn.execute(
            select(idempotency.c.body).where(
                idempotency.c.tenant == tenant, idempotency.c.key == key
            )
        )
    ).first()
    return (row is not None, row.body if row is not None else {})


async def write_once(db: Database, tenant: str, key: str | None, now: float, write: Write) -> Body:
    """Run ``write`` in one transaction, once per (tenant, key); returns its JSON result.
    The key is looked up in that same transaction (no connection or transaction of its own)."""
    if key is None:
        async with db.write() as conn:
            return await write(conn)
    try:
        async with db.write() as conn:
            found, body = await _recorded(conn, tenant, key)
            if found:
                return body
            body = await write(conn)
            await conn.execute(
                insert(idempotency),
                {"tenant": tenant, "key": key, "status_code": 200, "body": body,
                 "created_at": now},
            )  # fmt: skip
        return body
    except IntegrityError:  # a concurrent request with the key committed first
        async with db.read() as conn:
            found, body = await _recorded(conn, tenant, key)
        if not found:
            raise
        return body
