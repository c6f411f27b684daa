"""Background responses: queued, claimed by one gateway under a lease, finished or cancelled.

A claim takes the oldest response that is ``queued`` or ``in_progress`` with an expired lease
(its gateway died) and makes it ``in_progress`` for the claimer until ``now + lease``; on
PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED``, so concurrent claimers never get the
same one; SQLite's writes are serialized by the database's write lock. A response claimed
``max_attempts`` times already is marked ``failed`` instead of being run again. Only the
owner of the current lease may renew or finish a response; a cancelled one stays cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_common.errors import InvalidRequestError
from switchyard_session.conversations import Item, insert_rows, item_rows, not_found
from switchyard_session.responses import output_items
from switchyard_session.schema import SECTION_INPUT, SECTION_OUTPUT, responses

QUEUED = "queued"
IN_PROGRESS = "in_progress"
CANCELLED = "cancelled"
FINAL = frozenset({"completed", "failed", "incomplete", CANCELLED})


@dataclass
class Claim:
    """What a claimer gets: the response to run (or none), and those given up on."""

    claimed: dict[str, Any] | None = None
    failed: list[dict[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "failed": self.failed}


def _with_status(data: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    return {**data, "status": status, **extra}


async def insert_queued(
    conn: AsyncConnection,
    tenant: str,
    response: dict[str, Any],
    request: dict[str, Any],
    *,
    now: float,
    expires_at: float | None,
) -> dict[str, Any]:
    data = _with_status(response, QUEUED)
    await conn.execute(
        responses.insert().values(
            id=response["id"], tenant=tenant, created_at=now,
            previous_response_id=response.get("previous_response_id"), conversation_id=None,
            data=data, expires_at=expires_at, status=QUEUED, attempts=0, request=request,
        )
    )  # fmt: skip
    return data


async def claim(
    conn: AsyncConnection,
    owner: str,
    *,
    now: float,
    lease_seconds: float,
    max_attempts: int,
    skip_locked: bool,
) -> Claim:
    """Claim one runnable response for ``owner`` (see the module's docstring)."""
    result = Claim()
    runnable = or_(
        responses.c.status == QUEUED,
        (responses.c.status == IN_PROGRESS) & (responses.c.lease_until < now),
    )
    while True:
        query = select(responses.c.id, responses.c.tenant, responses.c.data,
                       responses.c.attempts, responses.c.request)  # fmt: skip
        query = query.where(runnable).order_by(responses.c.created_at).limit(1)
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        row = (await conn.execute(query)).first()
        if row is None:
            return result
        if row.attempts >= max_attempts:
            error = {"code": "server_error", "message": "The response was not finished."}
            await conn.execute(
                update(responses).where(responses.c.id == row.id).values(
                    status="failed", lease_until=None, owner=None,
                    data=_with_status(row.data, "failed", error=error),
                )
            )  # fmt: skip
            result.failed.append({"id": row.id, "tenant": row.tenant})
            continue
        data = _with_status(row.data, IN_PROGRESS)
        await conn.execute(
            update(responses).where(responses.c.id == row.id).values(
                status=IN_PROGRESS, lease_until=now + lease_seconds, owner=owner,
                attempts=row.attempts + 1, data=data,
            )
        )  # fmt: skip
        result.claimed = {"id": row.id, "tenant": row.tenant, "response": data,
                          "request": row.request, "attempt": row.attempts + 1}  # fmt: skip
        return result


async def renew(
    conn: AsyncConnection, response_id: str, owner: str, *, now: float, lease_seconds: float
) -> str | None:
    """Extend ``owner``'s lease; the response's status, or None when the lease is not
    ``owner``'s any more (expired and claimed again, or the response deleted)."""
    row = (
        await conn.execute(
            select(responses.c.status, responses.c.owner).where(responses.c.id == response_id)
        )
    ).first()
    if row is None or row.owner != owner:
        return None
    if row.status == IN_PROGRESS:
        await conn.execute(
            update(responses)
            .where(responses.c.id == response_id, responses.c.owner == owner)
            .values(lease_until=now + lease_seconds)
        )
    status: str = row.status
    return status


def _still_running(response_id: str, owner: str) -> tuple[ColumnElement[bool], ...]:
    """The response is running under ``owner``'s claim (not cancelled, not taken up by
    another claimer since): what only that owner may then change."""
    return (
        responses.c.id == response_id,
        responses.c.owner == owner,
        responses.c.status == IN_PROGRESS,
    )


async def release(conn: AsyncConnection, response_id: str, owner: str) -> bool:
    """Give a claimed response back (its gateway is shutting down): claimable at once, the
    attempt not counted."""
    released = await conn.execute(
        update(responses)
        .where(*_still_running(response_id, owner))
        .values(lease_until=0.0, attempts=responses.c.attempts - 1)
    )
    return bool(released.rowcount)


async def finish(
    conn: AsyncConnection,
    response_id: str,
    owner: str,
    response: dict[str, Any],
    input_items: list[Item],
    *,
    now: float,
) -> bool:
    """Store the final response and its items, if ``owner`` still runs it; else False."""
    done = await conn.execute(
        update(responses)
        .where(*_still_running(response_id, owner))
        .values(status=response["status"], lease_until=None, data=response)
    )
    if done.rowcount == 0:
        return False
    row = (
        await conn.execute(select(responses.c.tenant).where(responses.c.id == response_id))
    ).one()
    output = output_items(response)
    rows = item_rows(row.tenant, response_id, 0, input_items, section=SECTION_INPUT, now=now)
    rows += item_rows(row.tenant, response_id, len(input_items), output,
                      section=SECTION_OUTPUT, now=now)  # fmt: skip
    await insert_rows(conn, rows)
    return True


async def cancel(
    conn: AsyncConnection, tenant: str, response_id: str, *, lock: bool
) -> tuple[dict[str, Any], bool]:
    """Cancel a queued or running background response; a finished one is answered as is.
    Also whether this call cancelled it (so that its end is announced once)."""
    query = select(responses.c.status, responses.c.data).where(
        responses.c.id == response_id, responses.c.tenant == tenant
    )
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise not_found("response", response_id)
    if row.status is None:
        raise InvalidRequestError("Only background responses can be cancelled.")
    if row.status in FINAL:
        result: dict[str, Any] = row.data
        return result, False
    data = _with_status(row.data, CANCELLED)
    await conn.execute(
        update(responses).where(responses.c.id == response_id)
        .values(status=CANCELLED, lease_until=None, data=data)
    )  # fmt: skip
    return data, True
