"""Stored responses: a turn's Response object plus its input and output items."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import JSON, TextClause, bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_session.conversations import Item, insert_rows, item_rows, not_found
from switchyard_session.schema import SECTION_INPUT, SECTION_OUTPUT, responses

# Up to this many items, a response and its items are one INSERT (8 parameters an item).
MAX_ITEMS_AT_ONCE = 64
_RESPONSE_COLUMNS = ("id", "tenant", "created_at", "previous_response_id", "conversation_id",
                     "data", "expires_at")  # fmt: skip
_ITEM_COLUMNS = ("tenant", "owner_id", "seq", "section", "item_id", "data", "tokens",
                 "created_at")  # fmt: skip


def output_items(response: dict[str, Any]) -> list[Item]:
    """The items of a response's ``output`` that are stored (its messages)."""
    return [item for item in response.get("output", []) if item.get("type") == "message"]


def at_once(is_sqlite: bool, item_count: int) -> bool:
    """Whether a response with ``item_count`` items is stored in one statement."""
    return not is_sqlite and 0 < item_count <= MAX_ITEMS_AT_ONCE


@functools.lru_cache(maxsize=MAX_ITEMS_AT_ONCE)
def _response_with_items(count: int) -> TextClause:
    """PostgreSQL: the INSERT of a response as a CTE of the INSERT of ``count`` items. As
    text because SQLAlchemy caches no compiled Core INSERT with a DML CTE and several rows:
    compiling it on every turn cost more than the statement itself (0.8 ms against 0.2)."""
    rows = ", ".join(
        "(" + ", ".join(f":{column}_{i}" for column in _ITEM_COLUMNS) + ")" for i in range(count)
    )
    # Built from the constant column names above and item numbers only: no value is in it.
    columns, items = ", ".join(_RESPONSE_COLUMNS), ", ".join(_ITEM_COLUMNS)
    values = ", ".join(f":response_{column}" for column in _RESPONSE_COLUMNS)
    response = f"INSERT INTO responses ({columns}) VALUES ({values})"  # noqa: S608
    sql = f"WITH stored_response AS ({response}) INSERT INTO items ({items}) VALUES {rows}"  # noqa: S608
    json_values = [bindparam("response_data", type_=JSON)]
    for i in range(count):
        json_values += [bindparam(f"data_{i}", type_=JSON), bindparam(f"tokens_{i}", type_=JSON)]
    return text(sql).bindparams(*json_values)


async def insert_response(
    conn: AsyncConnection,
    tenant: str,
    response: dict[str, Any],
    input_items: list[Item],
    *,
    conversation_id: str | None,
    now: float,
    expires_at: float | None,
    tokens: dict[str, dict[str, int]],
    more_rows: list[dict[str, Any]] | None = None,
) -> None:
    """Store the response under its id with its items (inputs, then outputs) and
    ``more_rows`` (items of its conversation): in one statement where ``at_once``."""
    response_id = response["id"]
    row = {
        "id": response_id,
        "tenant": tenant,
        "created_at": now,
        "previous_response_id": response.get("previous_response_id"),
        "conversation_id": conversation_id,
        "data": response,
        "expires_at": expires_at,
    }
    rows = [
        *(more_rows or []),
        *item_rows(tenant, response_id, 0, input_items, section=SECTION_INPUT, now=now,
                   tokens=tokens),
        *item_rows(tenant, response_id, len(input_items), output_items(response),
                   section=SECTION_OUTPUT, now=now, tokens=tokens),
    ]  # fmt: skip
    if not at_once(conn.dialect.name == "sqlite", len(rows)):
        await conn.execute(insert(responses), row)
        await insert_rows(conn, rows)
        return
    params = {f"response_{column}": value for column, value in row.items()}
    for i, item in enumerate(rows):
        params.update({f"{column}_{i}": value for column, value in item.items()})
    await conn.execute(_response_with_items(len(rows)), params)


async def find_response(
    conn: AsyncConnection, tenant: str, response_id: str
) -> dict[str, Any] | None:
    """The tenant's stored response with this id, or None."""
    data: dict[str, Any] | None = (
        await conn.execute(
            select(responses.c.data).where(
                responses.c.id == response_id, responses.c.tenant == tenant
            )
        )
    ).scalar()
    return data


async def get_response(
    conn: AsyncConnection, tenant: str, response_id: str, param: str | None = None
) -> dict[str, Any]:
    data = await find_response(conn, tenant, response_id)
    if data is None:
        raise not_found("response", response_id, param)
    return data
