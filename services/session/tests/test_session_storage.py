"""The session store on both databases it runs on: real PostgreSQL 15 and embedded SQLite.

Each test runs once per backend, on a fresh, migrated database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from switchyard_common.errors import InvalidRequestError, NotFoundError
from switchyard_session import migrate
from switchyard_session.config import SessionSettings
from switchyard_session.db import Database, create_engine
from switchyard_session.items import message_items
from switchyard_session.retention import Retention, cleanup_expired
from switchyard_session.store import Store
from tests.support.postgres import PostgresServer

T = "tenant-a"
OTHER = "tenant-b"


class Clock:
    """An injected wall clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'session.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture
async def db(database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    settings = SessionSettings(data_dir=tmp_path, database_url=database_url)
    database = Database(create_engine(database_url, settings))
    await migrate.upgrade(database.engine)
    yield database
    await database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Database, clock: Clock) -> Store:
    return Store(db, Retention(None, {"short-lived": 60.0}), clock)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def texts(page: dict[str, Any]) -> list[str]:
    return [item["content"][0]["text"] for item in page["data"]]


async def all_items(store: Store, tenant: str, conversation_id: str) -> list[str]:
    page = await store.list_items(tenant, conversation_id, after=None, limit=100, order="asc")
    found = texts(page)
    while page["has_more"]:
        page = await store.list_items(
            tenant, conversation_id, after=page["last_id"], limit=100, order="asc"
        )
        found += texts(page)
    return found


async def test_schema_is_behind_until_migrated(database_url: str, tmp_path: Path) -> None:
    settings = SessionSettings(data_dir=tmp_path, database_url=database_url)
    engine = create_engine(database_url, settings)
    check = migrate.schema_check(engine)
    try:
        assert await check() is False
        await migrate.upgrade(engine)
        assert await check() is True
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_conversation_round_trip(store: Store) -> None:
    conv = await store.create_conversation(T, message_items([user("a")]), {"k": "v"})
    assert conv["id"].startswith("conv_") and len(conv["id"]) > 40
    assert conv["object"] == "conversation" and conv["metadata"] == {"k": "v"}
    assert await store.get_conversation(T, conv["id"]) == conv
    updated = await store.update_conversation(T, conv["id"], {"k": "w"})
    assert updated["metadata"] == {"k": "w"}
    added = await store.append_items(T, conv["id"], message_items([user("b"), user("c")]))
    assert [i["id"][:4] for i in added["data"]] == ["msg_", "msg_"]
    assert await all_items(store, T, conv["id"]) == ["a", "b", "c"]
    item = await store.get_item(T, conv["id"], added["first_id"])
    assert item["content"][0]["text"] == "b"
    await store.delete_item(T, conv["id"], added["first_id"])
    assert await all_items(store, T, conv["id"]) == ["a", "c"]
    deleted = await store.delete_conversation(T, conv["id"])
    assert deleted == {"id": conv["id"], "object": "conversation.deleted", "deleted": True}
    with pytest.raises(NotFoundError):
        await store.get_conversation(T, conv["id"])


async def test_pagination_both_orders(store: Store) -> None:
    conv = await store.create_conversation(T, message_items([user(str(i)) for i in range(7)]), {})
    cid = conv["id"]
    page = await store.list_items(T, cid, after=None, limit=3, order="asc")
    assert texts(page) == ["0", "1", "2"] and page["has_more"]
    page = await store.list_items(T, cid, after=page["last_id"], limit=3, order="asc")
    assert texts(page) == ["3", "4", "5"] and page["has_more"]
    page = await store.list_items(T, cid, after=page["last_id"], limit=3, order="asc")
    assert texts(page) == ["6"] and not page["has_more"]
    page = await store.list_items(T, cid, after=None, limit=4, order="desc")
    assert texts(page) == ["6", "5", "4", "3"] and page["has_more"]
    page = await store.list_items(T, cid, after=page["last_id"], limit=4, order="desc")
    assert texts(page) == ["2", "1", "0"] and not page["has_more"]
    with pytest.raises(InvalidRequestError):
        await store.list_items(T, cid, after="msg_nope", limit=4, order="desc")


async def test_fifty_concurrent_appenders_lose_and_interleave_nothing(store: Store) -> None:
    cid = (await store.create_conversation(T, [], {}))["id"]

    async def append(writer: int) -> None:
        batch = [user(f"{writer}:{part}") for part in range(3)]
        await store.append_items(T, cid, message_items(batch))

    await asyncio.gather(*(append(w) for w in range(50)))
    found = await all_items(store, T, cid)
    assert len(found) == 150
    # Each append's three items are contiguous and in order; every writer is there once.
    appends = [found[i : i + 3] for i in range(0, 150, 3)]
    writers = set()
    for group in appends:
        writer = group[0].split(":")[0]
        assert group == [f"{writer}:{part}" for part in range(3)]
        writers.add(writer)
    assert writers == {str(w) for w in range(50)}


async def test_idempotent_retries_write_once(store: Store) -> None:
    first = await store.create_conversation(T, [], {"n": "1"}, idempotency_key="k1")
    again = await store.create_conversation(T, [], {"n": "2"}, idempotency_key="k1")
    assert again == first
    # The same key from another tenant is another request.
    other = await store.create_conversation(OTHER, [], {}, idempotency_key="k1")
    assert other["id"] != first["id"]
    # Concurrent retries of one append: one write.
    results = await asyncio.gather(
        *(
            store.append_items(T, first["id"], message_items([user("once")]), idempotency_key="k2")
            for _ in range(5)
        )
    )
    assert all(r == results[0] for r in results)
    assert await all_items(store, T, first["id"]) == ["once"]


async def test_other_tenants_ids_are_not_found(store: Store) -> None:
    conv = await store.create_conversation(T, message_items([user("secret")]), {})
    cid, item_id = conv["id"], (await store.list_items(T, conv["id"], after=None, limit=1,
                                                       order="asc"))["first_id"]  # fmt: skip
    calls = [
        store.get_conversation(OTHER, cid),
        store.update_conversation(OTHER, cid, {}),
        store.delete_conversation(OTHER, cid),
        store.append_items(OTHER, cid, message_items([user("x")])),
        store.list_items(OTHER, cid, after=None, limit=10, order="asc"),
        store.get_item(OTHER, cid, item_id),
        store.delete_item(OTHER, cid, item_id),
        store.context(OTHER, "m", conversation_id=cid, previous_response_id=None, budget=None),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            await call
    assert await all_items(store, T, cid) == ["secret"]


def turn(response_id: str, answer: str, previous: str | None = None) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "previous_response_id": previous,
        "conversation": None,
        "output": [
            {"type": "message", "id": f"msg_out_{response_id}", "role": "assistant",
             "status": "completed",
             "content": [{"type": "output_text", "text": answer, "annotations": []}]}
        ],
    }  # fmt: skip


def context_texts(context: dict[str, Any]) -> list[str]:
    return [e["item"]["content"][0]["text"] for e in context["items"]]


async def test_response_chain_context_and_input_items(store: Store) -> None:
    q1, q2 = message_items([user("q1")]), message_items([user("q2")])
    await store.store_response(T, turn("resp_1", "a1"), q1, store=True, tokens={})
    await store.store_response(T, turn("resp_2", "a2", "resp_1"), q2, store=True, tokens={})
    ctx = await store.context(T, "m", conversation_id=None, previous_response_id="resp_2",
                              budget=None)  # fmt: skip
    assert context_texts(ctx) == ["q1", "a1", "q2", "a2"]
    assert ctx["root"] == "resp_1"
    page = await store.list_input_items(T, "resp_2", after=None, limit=10, order="desc")
    assert texts(page) == ["q2"]
    assert (await store.get_response(T, "resp_2"))["previous_response_id"] == "resp_1"
    with pytest.raises(NotFoundError):
        await store.get_response(OTHER, "resp_2")
    with pytest.raises(NotFoundError):
        await store.context(OTHER, "m", conversation_id=None, previous_response_id="resp_2",
                            budget=None)  # fmt: skip
    await store.delete_response(T, "resp_2")
    with pytest.raises(NotFoundError):
        await store.get_response(T, "resp_2")


async def test_turn_in_conversation_appends_inputs_and_outputs(store: Store) -> None:
    cid = (await store.create_conversation(T, message_items([user("hello")]), {}))["id"]
    response = {**turn("resp_c", "hi there"), "conversation": {"id": cid}}
    q = message_items([user("how are you?")])
    tokens = {q[0]["id"]: {"m": 5}, "msg_out_resp_c": {"m": 3}}
    await store.store_response(T, response, q, store=False, tokens=tokens)
    assert await all_items(store, T, cid) == ["hello", "how are you?", "hi there"]
    with pytest.raises(NotFoundError):  # store=False: the response itself is not kept
        await store.get_response(T, "resp_c")
    ctx = await store.context(T, "m", conversation_id=cid, previous_response_id=None, budget=None)
    assert [e["tokens"] for e in ctx["items"]] == [None, 5, 3]


async def test_context_budget_reads_only_the_newest_items(store: Store) -> None:
    cid = (await store.create_conversation(T, [], {}))["id"]
    for start in range(0, 600, 20):
        await store.append_items(T, cid, message_items([user(str(i)) for i in
                                                        range(start, start + 20)]))  # fmt: skip
    ctx = await store.context(T, "m", conversation_id=cid, previous_response_id=None, budget=None)
    assert len(ctx["items"]) == 600 and ctx["complete"]
    assert all(e["tokens"] is None for e in ctx["items"])
    updated = await store.write_token_counts(T, "m", {e["ref"]: 10 for e in ctx["items"]})
    assert updated == 600
    assert await store.write_token_counts(OTHER, "m", {ctx["items"][0]["ref"]: 1}) == 0
    ctx = await store.context(T, "m", conversation_id=cid, previous_response_id=None, budget=95)
    # Newest first until the known counts pass the budget: 10 items (100 tokens).
    assert context_texts(ctx) == [str(i) for i in range(590, 600)]
    assert not ctx["complete"]
    other_model = await store.context(T, "other", conversation_id=cid, previous_response_id=None,
                                      budget=95)  # fmt: skip
    assert other_model["items"][0]["tokens"] is None


async def test_ttl_expiry_deletes_in_batches(store: Store, db: Database, clock: Clock) -> None:
    keep = await store.create_conversation(T, message_items([user("keep")]), {})
    own = await store.create_conversation(
        T, message_items([user(str(i)) for i in range(5)]), {}, ttl_seconds=10
    )
    tenant_ttl = await store.create_conversation("short-lived", message_items([user("x")]), {})
    await store.store_response("short-lived", turn("resp_t", "a"), [], store=True, tokens={})
    clock.now += 11
    assert await cleanup_expired(db, clock.now, batch=2) == 1
    with pytest.raises(NotFoundError):
        await store.get_conversation(T, own["id"])
    assert await store.get_conversation("short-lived", tenant_ttl["id"])
    # A write renews the expiry: the tenant's TTL (60 s) counts from the last write.
    clock.now += 40
    await store.append_items("short-lived", tenant_ttl["id"], message_items([user("y")]))
    clock.now += 30
    assert await cleanup_expired(db, clock.now, batch=2) == 1  # only the response
    clock.now += 31
    assert await cleanup_expired(db, clock.now, batch=2) == 1
    with pytest.raises(NotFoundError):
        await store.get_conversation("short-lived", tenant_ttl["id"])
    with pytest.raises(NotFoundError):
        await store.get_response("short-lived", "resp_t")
    assert await all_items(store, T, keep["id"]) == ["keep"]


async def test_a_resent_turn_answers_what_was_recorded(store: Store) -> None:
    conversation = await store.create_conversation(T, [], {})
    first = {**turn("resp_1", "a1"), "conversation": {"id": conversation["id"]}}
    await store.store_response(T, first, message_items([user("q1")]), store=True, tokens={})
    resent = {**first, "output": []}  # whatever it carries, the first one stands
    again = await store.store_response(
        T, resent, message_items([user("q1 again")]), store=True, tokens={}
    )
    assert again == first
    assert await all_items(store, T, conversation["id"]) == ["q1", "a1"]
    # Another tenant's id is not "recorded" for this one: the conflict is an error.
    with pytest.raises(IntegrityError):
        await store.store_response("tenant-b", turn("resp_1", "x"), [], store=True, tokens={})
