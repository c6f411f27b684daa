"""A turn's context: the earlier items of a conversation or of a ``previous_response_id``
chain, oldest first, each with its cached token count for the model.

With a token budget, a conversation is read newest first in pages and reading stops once the
known counts exceed the budget, so a long conversation is never scanned in full: the index on
(owner, seq) serves each page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_session.conversations import get_conversation, not_found
from switchyard_session.schema import SECTION_CONVERSATION, items, responses

_PAGE = 256
# Longest previous_response_id chain followed.
MAX_CHAIN = 10_000


def _entry(row: Any, model: str) -> dict[str, Any]:
    tokens = (row.tokens or {}).get(model)
    return {"ref": row.pk, "item": row.data, "tokens": tokens}


async def conversation_context(
    conn: AsyncConnection, tenant: str, conversation_id: str, model: str, budget: int | None
) -> dict[str, Any]:
    c = items.c
    newest_first: list[dict[str, Any]] = []
    known = 0
    before: int | None = None
    complete = True
    while True:
        query = select(c.pk, c.seq, c.data, c.tokens).where(
            c.owner_id == conversation_id, c.section == SECTION_CONVERSATION, c.tenant == tenant
        )
        if before is not None:
            query = query.where(c.seq < before)
        rows = (await conn.execute(query.order_by(c.seq.desc()).limit(_PAGE))).all()
        for row in rows:
            entry = _entry(row, model)
            newest_first.append(entry)
            known += entry["tokens"] or 0
            if budget is not None and known > budget:
                complete = False
                break
        if not complete or len(rows) < _PAGE:
            break
        before = rows[-1].seq
    if not newest_first:  # no items: an empty conversation, or none of this tenant's (404)
        await get_conversation(conn, tenant, conversation_id, param="conversation")
    newest_first.reverse()
    # complete: every item is here; otherwise older ones (beyond the budget) were left out.
    return {"object": "context", "items": newest_first, "complete": complete}


async def chain_context(
    conn: AsyncConnection, tenant: str, response_id: str, model: str
) -> dict[str, Any]:
    """The chain's items: each response's inputs then outputs, oldest response first."""
    r = responses.c
    chain = (
        select(r.id, r.previous_response_id, literal(0).label("depth"))
        .where(r.id == response_id, r.tenant == tenant)
        .cte("chain", recursive=True)
    )
    step = (
        select(r.id, r.previous_response_id, (chain.c.depth + 1).label("depth"))
        .join(chain, r.id == chain.c.previous_response_id)
        .where(r.tenant == tenant, chain.c.depth < MAX_CHAIN)
    )
    chain = chain.union_all(step)
    # The chain's first response (deepest): the turns' routing affinity.
    root = (await conn.execute(select(chain.c.id).order_by(chain.c.depth.desc()).limit(1))).first()
    if root is None:
        raise not_found("response", response_id, "previous_response_id")
    c = items.c
    rows = (
        await conn.execute(
            select(c.pk, c.data, c.tokens)
            .join(chain, and_(c.owner_id == chain.c.id))
            .where(c.tenant == tenant)
            .order_by(chain.c.depth.desc(), c.seq.asc())
        )
    ).all()
    entries = [_entry(row, model) for row in rows]
    return {"object": "context", "items": entries, "complete": True, "root": root.id}


async def write_token_counts(
    conn: AsyncConnection, tenant: str, model: str, counts: dict[int, int]
) -> int:
    """Cache token counts for the model by item ref; returns how many items were updated."""
    if not counts:
        return 0
    rows = (
        await conn.execute(
            select(items.c.pk, items.c.tokens).where(
                items.c.pk.in_(list(counts)), items.c.tenant == tenant
            )
        )
    ).all()
    for row in rows:
        merged = {**(row.tokens or {}), model: counts[row.pk]}
        await conn.execute(update(items).where(items.c.pk == row.pk).values(tokens=merged))
    return len(rows)
