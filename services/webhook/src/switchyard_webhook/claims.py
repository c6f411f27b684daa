"""Claiming due deliveries and recording what an attempt got, in the database.

A claim is one transaction: ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite
renders no lock and its writes are serialized in the one process that may use it) picks
due deliveries, which become ``delivering`` under a claim token with ``next_attempt_at``
set to the lease's end. Only the holder of the token can record the outcome, so a claim
taken over after its lease ran out is never recorded twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_webhook.endpoints import signing_secrets
from switchyard_webhook.sender import Attempt
from switchyard_webhook.tables import deliveries, endpoints, events

OPEN = ("pending", "delivering")


@dataclass(frozen=True)
class Job:
    """One claimed delivery: everything needed to send it and to record the outcome."""

    delivery_id: str
    token: str
    attempts: int
    tenant: str
    endpoint_id: str
    url: str
    secrets: list[str]
    event_id: str
    payload: bytes


async def claim(
    conn: AsyncConnection, now: float, lease: float, limit: int, skip_endpoints: Sequence[str]
) -> list[Job]:
    """Claim up to ``limit`` due deliveries of enabled endpoints not in ``skip_endpoints``."""
    due = (
        select(deliveries.c.id)
        .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
        .where(
            deliveries.c.status.in_(OPEN),
            deliveries.c.next_attempt_at <= now,
            endpoints.c.status == "enabled",
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=deliveries)
    )
    if skip_endpoints:
        due = due.where(deliveries.c.endpoint_id.not_in(list(skip_endpoints)))
    ids = list((await conn.execute(due)).scalars())
    if not ids:
        return []
    token = secrets.token_hex(16)
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids))
        .values(status="delivering", next_attempt_at=now + lease, claim_token=token)
    )
    rows = await conn.execute(
        select(
            deliveries.c.id,
            deliveries.c.attempts,
            deliveries.c.tenant,
            deliveries.c.endpoint_id,
            deliveries.c.event_id,
            events.c.payload,
            endpoints.c.url,
            endpoints.c.secret,
            endpoints.c.previous_secret,
            endpoints.c.previous_secret_expires_at,
        )
        .join(events, events.c.id == deliveries.c.event_id)
        .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
        .where(deliveries.c.claim_token == token)
        .order_by(deliveries.c.next_attempt_at)
    )
    return [
        Job(
            delivery_id=r["id"],
            token=token,
            attempts=r["attempts"],
            tenant=r["tenant"],
            endpoint_id=r["endpoint_id"],
            url=r["url"],
            secrets=signing_secrets(r, now),
            event_id=r["event_id"],
            payload=r["payload"].encode(),
        )
        for r in rows.mappings()
    ]


async def release(conn: AsyncConnection, jobs: Sequence[Job], now: float) -> None:
    """Hand claimed deliveries back unsent (due at once, attempts unchanged)."""
    for job in jobs:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id == job.delivery_id, deliveries.c.claim_token == job.token)
            .values(status="pending", next_attempt_at=now, claim_token=None)
        )


async def record(
    conn: AsyncConnection, job: Job, attempt: Attempt, now: float, retry_at: float | None
) -> bool:
    """Store the attempt's outcome: succeeded, pending until ``retry_at``, or dead-lettered
    (``retry_at`` None). False when the claim was lost (its lease ran out)."""
    status = "succeeded" if attempt.ok else "pending" if retry_at is not None else "dead_letter"
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == job.delivery_id, deliveries.c.claim_token == job.token)
        .values(
            status=status,
            attempts=job.attempts + 1,
            next_attempt_at=retry_at if retry_at is not None else now,
            claim_token=None,
            last_status_code=attempt.status_code,
            last_latency_ms=round(attempt.latency * 1000, 3),
            last_error=attempt.error,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


async def record_successes(
    conn: AsyncConnection, done: Sequence[tuple[Job, Attempt]], now: float
) -> None:
    """Mark deliveries succeeded in one statement (a claim lost meanwhile matches no row),
    and reset their endpoints' failure counts."""
    await conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("d_id"), deliveries.c.claim_token == bindparam("d_token")
        )
        .values(
            status="succeeded",
            attempts=bindparam("d_attempts"),
            next_attempt_at=now,
            claim_token=None,
            last_status_code=bindparam("d_code"),
            last_latency_ms=bindparam("d_latency"),
            last_error=None,
            updated_at=now,
        ),
        [
            {
                "d_id": job.delivery_id,
                "d_token": job.token,
                "d_attempts": job.attempts + 1,
                "d_code": attempt.status_code,
                "d_latency": round(attempt.latency * 1000, 3),
            }
            for job, attempt in done
        ],
    )
    await conn.execute(
        update(endpoints)
        .where(
            endpoints.c.id.in_({job.endpoint_id for job, _ in done}),
            endpoints.c.consecutive_failures > 0,
        )
        .values(consecutive_failures=0, failing_since=None)
    )


async def endpoint_failed(
    conn: AsyncConnection, endpoint_id: str, now: float, max_failures: int, min_seconds: float
) -> dict[str, Any] | None:
    """Count a failure; returns the endpoint's row when this failure disabled it."""
    result = await conn.execute(
        update(endpoints)
        .where(endpoints.c.id == endpoint_id)
        .values(
            consecutive_failures=endpoints.c.consecutive_failures + 1,
            failing_since=func.coalesce(endpoints.c.failing_since, now),
        )
        .returning(endpoints.c.consecutive_failures, endpoints.c.failing_since)
    )
    row = result.first()
    if row is None or max_failures == 0 or row.consecutive_failures < max_failures:
        return None
    if now - row.failing_since < min_seconds:
        return None
    reason = f"{row.consecutive_failures} failed attempts in a row"
    disabled = await conn.execute(
        update(endpoints)
        .where(endpoints.c.id == endpoint_id, endpoints.c.status == "enabled")
        .values(status="disabled", disabled_reason=reason, updated_at=now)
        .returning(endpoints.c.id, endpoints.c.tenant, endpoints.c.name, endpoints.c.url)
    )
    found = disabled.mappings().first()
    if found is None:
        return None
    return {str(k): v for k, v in found.items()} | {"reason": reason}


async def stats(conn: AsyncConnection) -> tuple[float | None, int, int]:
    """(created_at of the oldest open delivery, dead letters, disabled endpoints)."""
    oldest = await conn.scalar(
        select(func.min(deliveries.c.created_at)).where(deliveries.c.status.in_(OPEN))
    )
    dead = await conn.scalar(
        select(func.count()).select_from(deliveries).where(deliveries.c.status == "dead_letter")
    )
    disabled = await conn.scalar(
        select(func.count()).select_from(endpoints).where(endpoints.c.status == "disabled")
    )
    return oldest, int(dead or 0), int(disabled or 0)


async def prune(conn: AsyncConnection, before: float, limit: int) -> int:
    """Delete up to ``limit`` events created before ``before`` with no open delivery (their
    deliveries go with them); how many went."""
    still_open = (
        select(deliveries.c.id)
        .where(deliveries.c.event_id == events.c.id, deliveries.c.status.in_(OPEN))
        .exists()
    )
    old = select(events.c.id).where(events.c.created_at < before, ~still_open).limit(limit)
    ids = list((await conn.execute(old)).scalars())
    if ids:
        await conn.execute(delete(deliveries).where(deliveries.c.event_id.in_(ids)))
        await conn.execute(delete(events).where(events.c.id.in_(ids)))
    return len(ids)
