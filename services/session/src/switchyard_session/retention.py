"""Retention: when a conversation or stored response expires, and the clean-up that deletes
expired ones in bounded batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import Table, delete, select, tuple_

from switchyard_session.db import Database
from switchyard_session.schema import conversations, idempotency, items, responses

log = logging.getLogger(__name__)

# An Idempotency-Key answers retries for this long.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600.0


class Retention:
    """TTLs: a conversation's own, else its tenant's, else the default (None: keep)."""

    def __init__(self, default: float | None, per_tenant: dict[str, float]) -> None:
        self.default = default
        self.per_tenant = dict(per_tenant)

    def ttl(self, tenant: str, own: float | None = None) -> float | None:
        if own is not None:
            return own
        return self.per_tenant.get(tenant, self.default)

    def expires_at(self, tenant: str, now: float, own: float | None = None) -> float | None:
        ttl = self.ttl(tenant, own)
        return None if ttl is None else now + ttl


async def _delete_owners(db: Database, owners: Table, now: float, batch: int) -> int:
    """Delete expired owners (conversations or responses) and their items, ``batch`` rows
    per transaction; returns how many owners went."""
    deleted = 0
    while True:
        async with db.write() as conn:
            ids = list(
                (
                    await conn.execute(
                        select(owners.c.id).where(owners.c.expires_at <= now).limit(batch)
                    )
                ).scalars()
            )
            if not ids:
                return deleted
            doomed = select(items.c.pk).where(items.c.owner_id.in_(ids)).limit(batch)
            gone = await conn.execute(delete(items).where(items.c.pk.in_(doomed)))
            if gone.rowcount < batch:  # this batch's items are all gone: the owners go too
                await conn.execute(delete(owners).where(owners.c.id.in_(ids)))
                deleted += len(ids)


async def cleanup_expired(db: Database, now: float, batch: int) -> int:
    """One full clean-up pass at ``now``; returns how many conversations and responses went."""
    deleted = await _delete_owners(db, conversations, now, batch)
    deleted += await _delete_owners(db, responses, now, batch)
    while True:
        async with db.write() as conn:
            key = tuple_(idempotency.c.tenant, idempotency.c.key)
            old = (
                select(idempotency.c.tenant, idempotency.c.key)
                .where(idempotency.c.created_at <= now - IDEMPOTENCY_TTL_SECONDS)
                .limit(batch)
            )
            gone = await conn.execute(delete(idempotency).where(key.in_(old)))
        if gone.rowcount < batch:
            return deleted


async def run_cleanup(
    db: Database, clock: Callable[[], float], interval: float, batch: int
) -> None:
    """Clean up every ``interval`` seconds until cancelled; a failed pass is retried."""
    while True:
        try:
            deleted = await cleanup_expired(db, clock(), batch)
            if deleted:
                log.info("retention clean-up", extra={"deleted": deleted})
        except Exception:
            log.exception("retention clean-up failed")
        await asyncio.sleep(interval)
