"""Conversations and their items: the queries, each on a connection the caller holds."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    TextClause,
    bindparam,
    case,
    delete,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_common.errors import InvalidRequestError, NotFoundError
from switchyard_session.schema import SECTION_CONVERSATION, conversations, items

Item = dict[str, Any]


def conversation_body(row: Any) -> dict[str, Any]:
    """The SDK's ``Conversation``."""
    return {
        "id": row.id,
        "object": "conversation",
        "created_at": row.created_at,
        "metadata": row.metadata,
    }


def not_found(kind: str, id_: str, param: str | None = None) -> NotFoundError:
    return NotFoundError(f"No {kind} found with id '{id_}'.", param=param)


async def get_conversation(
    conn: AsyncConnection, tenant: str, conversation_id: str, param: str | None = None
) -> Any:
    row = (
        await conn.execute(
            select(conversations).where(
                conversations.c.id == conversation_id, conversations.c.tenant == tenant
            )
        )
    ).first()
    if row is None:
        raise not_found("conversation", conversation_id, param)
    return row


async def create_conversation(
    conn: AsyncConnection,
    tenant: str,
    conversation_id: str,
    *,
    metadata: dict[str, str],
    now: float,
    ttl_seconds: float | None,
    expires_at: float | None,
) -> None:
    await conn.execute(
        insert(conversations).values(
            id=conversation_id,
            tenant=tenant,
            created_at=int(now),
            updated_at=now,
            metadata=metadata,
            next_seq=0,
            ttl_seconds=ttl_seconds,
            expires_at=expires_at,
        )
    )


async def touch_conversation(
    conn: AsyncConnection,
    tenant: str,
    conversation_id: str,
    *,
    now: float,
    default_expires_at: float | None,
    take: int = 0,
    values: dict[str, Any] | None = None,
) -> Any:
    """Take ``take`` sequence numbers (under the row's lock until commit), renew the
    expiry, apply ``values``; returns the updated row. 404 for another tenant's id."""
    c = conversations.c
    expires = case(
        (c.ttl_seconds.is_not(None), now + c.ttl_seconds),
        else_=literal(default_expires_at, Float),
    )
    row = (
        await conn.execute(
            update(conversations)
            .where(c.id == conversation_id, c.tenant == tenant)
            .values(
                next_seq=c.next_seq + take, updated_at=now, expires_at=expires, **(values or {})
            )
            .returning(*conversations.c)
        )
    ).first()
    if row is None:
        raise not_found("conversation", conversation_id)
    return row


def item_rows(
    tenant: str,
    owner_id: str,
    first_seq: int,
    new_items: list[Item],
    *,
    section: int,
    now: float,
    tokens: dict[str, dict[str, int]] | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``new_items`` in order from ``first_seq``; ``tokens`` by item id, per model."""
    return [
        {
            "tenant": tenant,
            "owner_id": owner_id,
            "seq": first_seq + i,
            "section": section,
            "item_id": item["id"],
            "data": item,
            "tokens": (tokens or {}).get(item["id"]),
            "created_at": now,
        }
        for i, item in enumerate(new_items)
    ]


async def insert_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert item rows (of any owners) in one statement."""
    if rows:
        await conn.execute(insert(items), rows)


async def appended_rows(
    conn: AsyncConnection,
    tenant: str,
    conversation_id: str,
    new_items: list[Item],
    *,
    now: float,
    default_expires_at: float | None,
    tokens: dict[str, dict[str, int]] | None = None,
) -> list[dict[str, Any]]:
    """Take one contiguous range of sequence numbers for ``new_items`` (the conversation's
    row stays locked until commit) and return their rows, for the caller to insert."""
    row = await touch_conversation(
        conn, tenant, conversation_id, now=now, default_expires_at=default_expires_at,
        take=len(new_items),
    )  # fmt: skip
    first = row.next_seq - len(new_items)
    return item_rows(
        tenant, conversation_id, first, new_items, section=SECTION_CONVERSATION, now=now,
        tokens=tokens,
    )  # fmt: skip


# PostgreSQL: take ``:count`` sequence numbers (the row's lock is held to the statement's
# end, so appends stay in order) and renew the expiry, as touch_conversation does.
_TAKE = (
    "UPDATE conversations SET next_seq = next_seq + :count, "
    "updated_at = CAST(:now AS DOUBLE PRECISION), expires_at = CASE "
    "WHEN ttl_seconds IS NOT NULL THEN CAST(:now AS DOUBLE PRECISION) + ttl_seconds "
    "ELSE CAST(:default_expires_at AS DOUBLE PRECISION) END "
    "WHERE id = :conversation_id AND tenant = :tenant RETURNING next_seq - :count AS first"
)
_INSERT_TAKEN = (
    "INSERT INTO items (tenant, owner_id, seq, section, item_id, data, tokens, created_at) "
    "SELECT CAST(:tenant AS VARCHAR), CAST(:conversation_id AS VARCHAR), taken.first + v.i, "
    "0, v.item_id, v.data, v.tokens, CAST(:now AS DOUBLE PRECISION) FROM taken, "  # 0: section
)


@functools.lru_cache(maxsize=64)
def _append_statement(count: int) -> TextClause:
    """PostgreSQL: an append of ``count`` items as one statement, the items inserted from
    the conversation's row that gave them their sequence numbers. As text, which SQLAlchemy
    caches compiled (built from the constants above and item numbers: no value is in it)."""
    rows = ", ".join(
        f"({i}, CAST(:item_id_{i} AS VARCHAR), CAST(:data_{i} AS JSON), CAST(:tokens_{i} AS JSON))"
        for i in range(count)
    )
    values = f"(VALUES {rows}) AS v(i, item_id, data, tokens)"
    json_values = (bindparam(f"{name}_{i}", type_=JSON) for i in range(count)
                   for name in ("data", "tokens"))  # fmt: skip
    return text(f"WITH taken AS ({_TAKE}) {_INSERT_TAKEN}{values}").bindparams(*json_values)


async def append_at_once(
    conn: AsyncConnection,
    tenant: str,
    conversation_id: str,
    new_items: list[Item],
    *,
    now: float,
    default_expires_at: float | None,
    tokens: dict[str, dict[str, int]] | None = None,
) -> None:
    """``append_items`` as one statement (PostgreSQL, at most 64 items): atomic on its own,
    so it needs no transaction. No such conversation of the tenant's: nothing written, 404."""
    params: dict[str, Any] = {
        "count": len(new_items), "now": now, "default_expires_at": default_expires_at,
        "conversation_id": conversation_id, "tenant": tenant,
    }  # fmt: skip
    for i, item in enumerate(new_items):
        params.update({f"item_id_{i}": item["id"], f"data_{i}": item,
                       f"tokens_{i}": (tokens or {}).get(item["id"])})  # fmt: skip
    result = await conn.execute(_append_statement(len(new_items)), params)
    if result.rowcount == 0:
        raise not_found("conversation", conversation_id)


async def append_items(
    conn: AsyncConnection,
    tenant: str,
    conversation_id: str,
    new_items: list[Item],
    *,
    now: float,
    default_expires_at: float | None,
    tokens: dict[str, dict[str, int]] | None = None,
) -> None:
    """Append to a conversation: one contiguous range of sequence numbers per call."""
    rows = await appended_rows(
        conn, tenant, conversation_id, new_items, now=now,
        default_expires_at=default_expires_at, tokens=tokens,
    )  # fmt: skip
    await insert_rows(conn, rows)


async def delete_owner(conn: AsyncConnection, tenant: str, owner: Any, owner_id: str) -> bool:
    """Delete a conversation or response and its items; False when there was none."""
    gone = await conn.execute(delete(owner).where(owner.c.id == owner_id, owner.c.tenant == tenant))
    if gone.rowcount == 0:
        return False
    await conn.execute(delete(items).where(items.c.owner_id == owner_id))
    return True


async def get_item(conn: AsyncConnection, tenant: str, owner_id: str, item_id: str) -> Any:
    row = (
        await conn.execute(
            select(items.c.pk, items.c.data).where(
                items.c.owner_id == owner_id,
                items.c.item_id == item_id,
                items.c.tenant == tenant,
            )
        )
    ).first()
    if row is None:
        raise not_found("item", item_id)
    return row


async def list_items(
    conn: AsyncConnection,
    tenant: str,
    owner_id: str,
    *,
    section: int,
    after: str | None,
    limit: int,
    order: str,
) -> dict[str, Any]:
    """One page of an owner's items in the SDK's cursor-page shape."""
    c = items.c
    query = select(c.data).where(c.owner_id == owner_id, c.tenant == tenant, c.section == section)
    if after is not None:
        at_after = c.owner_id == owner_id, c.item_id == after, c.section == section
        cursor = (await conn.execute(select(c.seq).where(*at_after))).scalar()
        if cursor is None:
            raise InvalidRequestError(f"No item found with id '{after}'.", param="after")
        query = query.where(c.seq > cursor if order == "asc" else c.seq < cursor)
    query = query.order_by(c.seq.asc() if order == "asc" else c.seq.desc()).limit(limit + 1)
    data = list((await conn.execute(query)).scalars())
    page = data[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(data) > limit,
    }
