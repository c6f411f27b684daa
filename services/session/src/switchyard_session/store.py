"""The session store: every operation the API offers, each in one transaction, per tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_session import claims, context, conversations, responses
from switchyard_session.conversations import Item, conversation_body, not_found
from switchyard_session.db import Database
from switchyard_session.idempotency import write_once
from switchyard_session.ids import new_id
from switchyard_session.retention import Retention
from switchyard_session.schema import SECTION_CONVERSATION, SECTION_INPUT, items
from switchyard_session.schema import conversations as conversations_table
from switchyard_session.schema import responses as responses_table

Tokens = dict[str, dict[str, int]]


class Store:
    def __init__(self, db: Database, retention: Retention, clock: Callable[[], float]) -> None:
        self.db = db
        self.retention = retention
        self.clock = clock

    # Conversations

    async def create_conversation(
        self,
        tenant: str,
        new_items: list[Item],
        metadata: dict[str, str],
        *,
        ttl_seconds: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        now = self.clock()
        conversation_id = new_id("conv")
        expires_at = self.retention.expires_at(tenant, now, ttl_seconds)

        async def write(conn: AsyncConnection) -> dict[str, Any]:
            await conversations.create_conversation(
                conn, tenant, conversation_id, metadata=metadata, now=now,
                ttl_seconds=ttl_seconds, expires_at=expires_at,
            )  # fmt: skip
            await conversations.append_items(
                conn, tenant, conversation_id, new_items, now=now, default_expires_at=expires_at
            )
            row = await conversations.get_conversation(conn, tenant, conversation_id)
            return conversation_body(row)

        return await write_once(self.db, tenant, idempotency_key, now, write)

    async def get_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return conversation_body(
                await conversations.get_conversation(conn, tenant, conversation_id)
            )

    async def update_conversation(
        self,
        tenant: str,
        conversation_id: str,
        metadata: dict[str, str],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        now = self.clock()

        async def write(conn: AsyncConnection) -> dict[str, Any]:
            row = await conversations.touch_conversation(
                conn, tenant, conversation_id, now=now,
                default_expires_at=self.retention.expires_at(tenant, now),
                values={"metadata": metadata},
            )  # fmt: skip
            return conversation_body(row)

        return await write_once(self.db, tenant, idempotency_key, now, write)

    async def delete_conversation(self, tenant: str, conversation_id: str) -> dict[str, Any]:
        async with self.db.write() as conn:
            if not await conversations.delete_owner(
                conn, tenant, conversations_table, conversation_id
            ):
                raise not_found("conversation", conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    # Conversation items

    async def append_items(
        self,
        tenant: str,
        conversation_id: str,
        new_items: list[Item],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        now = self.clock()
        expires_at = self.retention.expires_at(tenant, now)
        body = {
            "object": "list",
            "data": new_items,
            "first_id": new_items[0]["id"],
            "last_id": new_items[-1]["id"],
            "has_more": False,
        }
        if idempotency_key is None and responses.at_once(self.db.is_sqlite, len(new_items)):
            async with self.db.single_write() as conn:
                await conversations.append_at_once(
                    conn, tenant, conversation_id, new_items, now=now,
                    default_expires_at=expires_at,
                )  # fmt: skip
            return body

        async def write(conn: AsyncConnection) -> dict[str, Any]:
            await conversations.append_items(
                conn, tenant, conversation_id, new_items, now=now, default_expires_at=expires_at
            )
            return body

        return await write_once(self.db, tenant, idempotency_key, now, write)

    async def list_items(
        self, tenant: str, conversation_id: str, *, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            await conversations.get_conversation(conn, tenant, conversation_id)
            return await conversations.list_items(
                conn,
                tenant,
                conversation_id,
                section=SECTION_CONVERSATION,
                after=after,
                limit=limit,
                order=order,
            )

    async def get_item(self, tenant: str, conversation_id: str, item_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            await conversations.get_conversation(conn, tenant, conversation_id)
            data: dict[str, Any] = (
                await conversations.get_item(conn, tenant, conversation_id, item_id)
            ).data
            return data

    async def delete_item(self, tenant: str, conversation_id: str, item_id: str) -> dict[str, Any]:
        now = self.clock()
        async with self.db.write() as conn:
            row = await conversations.touch_conversation(
                conn, tenant, conversation_id, now=now,
                default_expires_at=self.retention.expires_at(tenant, now),
            )  # fmt: skip
            item = await conversations.get_item(conn, tenant, conversation_id, item_id)
            await conn.execute(delete(items).where(items.c.pk == item.pk))
            return conversation_body(row)

    # Responses

    async def store_response(
        self,
        tenant: str,
        response: dict[str, Any],
        input_items: list[Item],
        *,
        store: bool,
        tokens: Tokens,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Record a finished turn in one transaction: the response (when ``store``) and,
        with a conversation, its input and output items appended to it. On PostgreSQL, two
        statements (the conversation's sequence numbers; the response with every item); a
        turn with no Idempotency-Key that is stored without a conversation, or appended to
        one without being stored, is one statement, committed on its own (no BEGIN and
        COMMIT round trips)."""
        now = self.clock()
        conversation_id = (response.get("conversation") or {}).get("id")
        expires_at = self.retention.expires_at(tenant, now)
        turn_items = [*input_items, *responses.output_items(response)]

        async def write(conn: AsyncConnection) -> dict[str, Any]:
            rows = []
            if conversation_id is not None:
                rows = await conversations.appended_rows(
                    conn, tenant, conversation_id, turn_items, now=now,
                    default_expires_at=expires_at, tokens=tokens,
                )  # fmt: skip
            if not store:
                await conversations.insert_rows(conn, rows)
                return response
            await responses.insert_response(
                conn, tenant, response, input_items, conversation_id=conversation_id,
                now=now, expires_at=expires_at, tokens=tokens, more_rows=rows,
            )  # fmt: skip
            return response

        try:
            if idempotency_key is None and responses.at_once(self.db.is_sqlite, len(turn_items)):
                if conversation_id is None and store:  # the response with its items
                    async with self.db.single_write() as conn:
                        return await write(conn)
                if conversation_id is not None and not store:  # the items, appended
                    async with self.db.single_write() as conn:
                        await conversations.append_at_once(
                            conn, tenant, conversation_id, turn_items, now=now,
                            default_expires_at=expires_at, tokens=tokens,
                        )  # fmt: skip
                    return response
            return await write_once(self.db, tenant, idempotency_key, now, write)
        except IntegrityError:
            # The response id is the gateway's, one per turn: a stored one is this turn sent
            # again (the gateway resends when a connection drops before any answer), and
            # the write above rolled back whole. Answer what was recorded the first time.
            async with self.db.read() as conn:
                recorded = await responses.find_response(conn, tenant, response["id"])
            if not store or recorded is None:
                raise
            return recorded

    async def get_response(self, tenant: str, response_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await responses.get_response(conn, tenant, response_id)

    async def delete_response(self, tenant: str, response_id: str) -> dict[str, Any]:
        async with self.db.write() as conn:
            if not await conversations.delete_owner(conn, tenant, responses_table, response_id):
                raise not_found("response", response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def list_input_items(
        self, tenant: str, response_id: str, *, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            await responses.get_response(conn, tenant, response_id)
            return await conversations.list_items(
                conn, tenant, response_id, section=SECTION_INPUT, after=after, limit=limit,
                order=order,
            )  # fmt: skip

    # Background responses (see claims.py)

    async def queue_response(
        self, tenant: str, response: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        now = self.clock()
        async with self.db.write() as conn:
            return await claims.insert_queued(
                conn, tenant, response, request, now=now,
                expires_at=self.retention.expires_at(tenant, now),
            )  # fmt: skip

    async def claim(self, owner: str, lease_seconds: float, max_attempts: int) -> claims.Claim:
        async with self.db.write() as conn:
            return await claims.claim(
                conn, owner, now=self.clock(), lease_seconds=lease_seconds,
                max_attempts=max_attempts, skip_locked=not self.db.is_sqlite,
            )  # fmt: skip

    async def renew(self, response_id: str, owner: str, lease_seconds: float) -> str | None:
        async with self.db.write() as conn:
            return await claims.renew(
                conn, response_id, owner, now=self.clock(), lease_seconds=lease_seconds
            )

    async def release(self, response_id: str, owner: str) -> bool:
        async with self.db.write() as conn:
            return await claims.release(conn, response_id, owner)

    async def finish(
        self, response_id: str, owner: str, response: dict[str, Any], input_items: list[Item]
    ) -> bool:
        async with self.db.write() as conn:
            return await claims.finish(
                conn, response_id, owner, response, input_items, now=self.clock()
            )

    async def cancel_response(self, tenant: str, response_id: str) -> tuple[dict[str, Any], bool]:
        async with self.db.write() as conn:
            return await claims.cancel(conn, tenant, response_id, lock=not self.db.is_sqlite)

    # Context

    async def context(
        self,
        tenant: str,
        model: str,
        *,
        conversation_id: str | None,
        previous_response_id: str | None,
        budget: int | None,
    ) -> dict[str, Any]:
        async with self.db.read() as conn:
            if conversation_id is not None:
                return await context.conversation_context(
                    conn, tenant, conversation_id, model, budget
                )
            if previous_response_id is not None:
                return await context.chain_context(conn, tenant, previous_response_id, model)
        return {"object": "context", "items": [], "complete": True}

    async def write_token_counts(self, tenant: str, model: str, counts: dict[int, int]) -> int:
        async with self.db.write() as conn:
            return await context.write_token_counts(conn, tenant, model, counts)
