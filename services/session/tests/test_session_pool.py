"""What a recorded turn costs the database, and the PostgreSQL pool's check of idle
connections, on a real PostgreSQL 15.

A recorded turn is one statement (the response and its items), after the conversation's
sequence numbers when it has one; an append is one statement too. A pooled connection is
pinged only after it has been idle (``database_ping_after_idle_seconds``), so one that the
server dropped while idle is replaced without an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from switchyard_common.errors import NotFoundError
from switchyard_session import migrate
from switchyard_session.config import SessionSettings
from switchyard_session.db import Database, create_engine
from switchyard_session.items import message_items
from switchyard_session.retention import Retention
from switchyard_session.store import Store
from tests.support.postgres import PostgresServer

T = "tenant-a"


async def open_database(server: PostgresServer, tmp_path: Path, idle: float) -> Database:
    url = server.create_database()
    settings = SessionSettings(
        data_dir=tmp_path, database_url=url, database_ping_after_idle_seconds=idle
    )
    database = Database(create_engine(url, settings))
    await migrate.upgrade(database.engine)
    return database


def drop_connections(server: PostgresServer, database: Database) -> None:
    """Terminate every server connection of the database (as a restart would), and wait
    until they are gone."""
    name = database.engine.url.database
    others = f"FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    server.sql(f"SELECT pg_terminate_backend(pid) {others}")
    for _ in range(1000):
        if server.sql(f"SELECT count(*) {others}").strip() == "0":
            return
    raise AssertionError("the terminated connections did not go")


async def select_one(database: Database) -> Any:
    async with database.read() as conn:
        return (await conn.execute(text("SELECT 1"))).scalar()


@pytest.fixture
async def store(postgres_server: PostgresServer, tmp_path: Path) -> AsyncIterator[Store]:
    database = await open_database(postgres_server, tmp_path, idle=1.0)
    yield Store(database, Retention(None, {}), lambda: 1_800_000_000.0)
    await database.close()


def statements_of(store: Store) -> list[str]:
    """The SQL statements the store sends from now on (their first word)."""
    sent: list[str] = []

    @event.listens_for(store.db.engine.sync_engine, "before_cursor_execute")
    def _sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 1)[0])

    return sent


def turn(response_id: str, conversation: str | None = None) -> dict[str, Any]:
    output = [{"type": "message", "id": f"msg_out_{response_id}", "status": "completed",
               "role": "assistant", "content": [{"type": "output_text", "text": "hi",
                                                 "annotations": []}]}]  # fmt: skip
    return {"id": response_id, "object": "response", "output": output,
            "conversation": {"id": conversation} if conversation else None}  # fmt: skip


async def test_a_stored_turn_is_one_statement_and_two_with_a_conversation(
    store: Store,
) -> None:
    conversation = await store.create_conversation(T, [], {})
    sent = statements_of(store)
    inputs = message_items([{"role": "user", "content": "hello"}])
    await store.store_response(T, turn("resp_1"), inputs, store=True, tokens={})
    assert sent == ["WITH"]  # the response, as a CTE of the INSERT of its items
    assert (await store.get_response(T, "resp_1"))["id"] == "resp_1"
    # The same id again (the gateway resent the turn): nothing of it is written, and the
    # answer is what was recorded the first time.
    again = {**turn("resp_1"), "metadata": {"attempt": "2"}}
    recorded = await store.store_response(T, again, message_items([{"role": "user",
                                          "content": "twice"}]), store=True, tokens={})  # fmt: skip
    assert recorded == turn("resp_1")
    first_inputs = await store.list_input_items(T, "resp_1", after=None, limit=10, order="asc")
    assert [item["id"] for item in first_inputs["data"]] == [inputs[0]["id"]]
    sent.clear()
    inputs = message_items([{"role": "user", "content": "again"}])
    await store.store_response(T, turn("resp_2", conversation["id"]), inputs, store=True, tokens={})
    assert sent == ["UPDATE", "WITH"]  # sequence numbers, then the response and all items
    listed = await store.list_items(T, conversation["id"], after=None, limit=10, order="asc")
    assert [item["role"] for item in listed["data"]] == ["user", "assistant"]
    # Resent, a conversation's turn is not appended twice either.
    await store.store_response(T, turn("resp_2", conversation["id"]), inputs, store=True, tokens={})
    relisted = await store.list_items(T, conversation["id"], after=None, limit=10, order="asc")
    assert relisted["data"] == listed["data"]
    inputs_of_2 = await store.list_input_items(T, "resp_2", after=None, limit=10, order="asc")
    assert [item["id"] for item in inputs_of_2["data"]] == [inputs[0]["id"]]


async def test_an_append_is_one_statement_and_keeps_order_and_tenancy(store: Store) -> None:
    conversation = await store.create_conversation(T, [], {})
    sent = statements_of(store)
    first = message_items([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    await store.append_items(T, conversation["id"], first)
    assert sent == ["WITH"]  # sequence numbers taken and items inserted in one statement
    with pytest.raises(NotFoundError):
        await store.append_items("tenant-b", conversation["id"], message_items([{"role":
                                 "user", "content": "not mine"}]))  # fmt: skip
    sent.clear()
    unstored = message_items([{"role": "user", "content": "c"}])
    counts = {unstored[0]["id"]: {"m": 7}}
    await store.store_response(T, turn("resp_u", conversation["id"]), unstored, store=False,
                               tokens=counts)  # fmt: skip
    assert sent == ["WITH"]  # a turn appended to the conversation, not stored
    context = await store.context(T, "m", conversation_id=conversation["id"],
                                  previous_response_id=None, budget=None)  # fmt: skip
    texts = [entry["item"]["content"][0]["text"] for entry in context["items"]]
    assert texts == ["a", "b", "c", "hi"]
    assert [entry["tokens"] for entry in context["items"]] == [None, None, 7, None]


async def test_a_turn_of_many_items_is_stored_in_a_transaction(store: Store) -> None:
    sent = statements_of(store)
    many = message_items([{"role": "user", "content": str(i)} for i in range(70)])
    await store.store_response(T, turn("resp_many"), many, store=True, tokens={})
    assert sent == ["INSERT", "INSERT"]  # past MAX_ITEMS_AT_ONCE: the response, its items
    page = await store.list_input_items(T, "resp_many", after=None, limit=100, order="asc")
    assert [item["id"] for item in page["data"]] == [item["id"] for item in many]


async def test_an_idempotency_key_is_checked_in_the_write_transaction(store: Store) -> None:
    sent = statements_of(store)
    first = await store.store_response(T, turn("resp_k"), [], store=True, tokens={},
                                       idempotency_key="k1")  # fmt: skip
    assert sent == ["SELECT", "WITH", "INSERT"]  # key, response and items, key
    sent.clear()
    again = await store.store_response(T, turn("resp_k"), [], store=True, tokens={},
                                       idempotency_key="k1")  # fmt: skip
    assert again == first
    assert sent == ["SELECT"]


async def test_a_connection_dropped_while_idle_is_replaced_at_checkout(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = await open_database(postgres_server, tmp_path, idle=0.0)
    try:
        assert await select_one(database) == 1
        drop_connections(postgres_server, database)
        assert await select_one(database) == 1  # pinged, found dead, replaced
    finally:
        await database.close()


async def test_a_connection_used_within_the_window_is_not_pinged(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    database = await open_database(postgres_server, tmp_path, idle=3600.0)
    try:
        assert await select_one(database) == 1
        drop_connections(postgres_server, database)
        with pytest.raises(DBAPIError) as caught:  # the service answers this with a 503
            await select_one(database)
        assert caught.value.connection_invalidated
        assert await select_one(database) == 1  # the pool renewed its connections
    finally:
        await database.close()
