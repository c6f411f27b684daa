"""Stored responses: a turn's Response object plus its input and output items."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_session.conversations import Item, item_rows, not_found
from switchyard_session.schema import SECTION_INPUT, SECTION_OUTPUT, responses


def output_items(response: dict[str, Any]) -> list[Item]:
    """The items of a response's ``output`` that are stored (its messages)."""
    return [item for item in response.get("output", []) if item.get("type") == "message"]


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
) -> list[dict[str, Any]]:
    """Store the response under its id; returns the rows of its items (inputs first, then
    outputs) for the caller to insert, with any others, in one statement."""
    response_id = response["id"]
    await conn.execute(
        insert(responses),
        {
            "id": response_id,
            "tenant": tenant,
            "created_at": now,
            "previous_response_id": response.get("previous_response_id"),
            "conversation_id": conversation_id,
            "data": response,
            "expires_at": expires_at,
        },
    )
    inputs = item_rows(
        tenant, response_id, 0, input_items, section=SECTION_INPUT, now=now, tokens=tokens
    )
    outputs = item_rows(
        tenant, response_id, len(input_items), output_items(response), section=SECTION_OUTPUT,
        now=now, tokens=tokens,
    )  # fmt: skip
    return inputs + outputs


async def get_response(
    conn: AsyncConnection, tenant: str, response_id: str, param: str | None = None
) -> dict[str, Any]:
    data = (
        await conn.execute(
            select(responses.c.data).where(
                responses.c.id == response_id, responses.c.tenant == tenant
            )
        )
    ).scalar()
    if data is None:
        raise not_found("response", response_id, param)
    result: dict[str, Any] = data
    return result
