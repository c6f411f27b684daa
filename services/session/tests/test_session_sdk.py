"""The session service's API in the official ``openai`` SDK's shapes: a real service process on
real PostgreSQL, called with ``client.conversations`` (the gateway fronts the same paths)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.postgres import PostgresServer
from tests.support.procs import ServiceProcess, free_port

TOKEN = "internal-" + "1" * 24


@pytest.fixture(scope="module")
def session_env(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return {
        "SWITCHYARD_SESSION_DATABASE_URL": postgres_server.create_database(),
        "SWITCHYARD_SESSION_DATA_DIR": str(tmp_path_factory.mktemp("session")),
        "SWITCHYARD_SESSION_INTERNAL_TOKEN": TOKEN,
        "SWITCHYARD_SESSION_PORT": str(free_port()),
    }


def start(env: dict, log: Path) -> ServiceProcess:
    return ServiceProcess(
        "switchyard_session", env, log, int(env["SWITCHYARD_SESSION_PORT"])
    ).wait_ready(60)


@pytest.fixture(scope="module")
def session(session_env: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The migration runs as the chart's Job runs it, then the service starts."""
    migrated = subprocess.run(
        [sys.executable, "-m", "switchyard_session", "migrate"],
        env={**os.environ, **session_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    logs = tmp_path_factory.mktemp("session-logs")
    state = {"proc": start(session_env, logs / "session.log"), "logs": logs}
    yield state
    state["proc"].stop()


def client_for(session: dict, tenant: str) -> OpenAI:
    return OpenAI(
        base_url=f"{session['proc'].url}/v1",
        api_key=TOKEN,
        default_headers={"x-switchyard-tenant": tenant},
        max_retries=0,
    )


def test_without_service_token_is_401(session: dict) -> None:
    r = httpx.get(f"{session['proc'].url}/v1/conversations/conv_x",
                  headers={"x-switchyard-tenant": "a"})  # fmt: skip
    assert r.status_code == 401


def test_conversations_round_trip_with_the_sdk(session: dict) -> None:
    client = client_for(session, "acme")
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "hello"}],
        metadata={"topic": "greetings"},
    )
    assert conv.id.startswith("conv_") and conv.metadata == {"topic": "greetings"}
    assert client.conversations.retrieve(conv.id).id == conv.id
    updated = client.conversations.update(conv.id, metadata={"topic": "farewells"})
    assert updated.metadata == {"topic": "farewells"}
    added = client.conversations.items.create(
        conv.id,
        items=[{"type": "message", "role": "assistant", "content": f"a{i}"} for i in range(4)],
    )
    assert len(added.data) == 4 and added.first_id == added.data[0].id
    asc = [i.content[0].text for i in client.conversations.items.list(conv.id, order="asc",
                                                                      limit=2)]  # fmt: skip
    assert asc == ["hello", "a0", "a1", "a2", "a3"]  # auto-paginated, two per page
    desc = client.conversations.items.list(conv.id, order="desc", limit=2)
    assert [i.content[0].text for i in desc.data] == ["a3", "a2"] and desc.has_more
    assert [i.content[0].text for i in desc.iter_pages().__next__().data] == ["a3", "a2"]
    assert [i.content[0].text for i in desc] == ["a3", "a2", "a1", "a0", "hello"]
    item = client.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
    assert item.type == "message" and item.role == "assistant"
    after_delete = client.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
    assert after_delete.id == conv.id
    assert len(list(client.conversations.items.list(conv.id))) == 4
    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted and deleted.id == conv.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_other_tenant_gets_404_on_every_route(session: dict) -> None:
    owner, other = client_for(session, "owner"), client_for(session, "intruder")
    conv = owner.conversations.create(items=[{"role": "user", "content": "private"}])
    item_id = owner.conversations.items.list(conv.id).data[0].id
    calls = [
        lambda: other.conversations.retrieve(conv.id),
        lambda: other.conversations.update(conv.id, metadata={"x": "y"}),
        lambda: other.conversations.delete(conv.id),
        lambda: other.conversations.items.create(conv.id, items=[{"role": "user",
                                                                  "content": "x"}]),
        lambda: other.conversations.items.list(conv.id),
        lambda: other.conversations.items.retrieve(item_id, conversation_id=conv.id),
        lambda: other.conversations.items.delete(item_id, conversation_id=conv.id),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call()
    assert [i.content[0].text for i in owner.conversations.items.list(conv.id)] == ["private"]


def test_idempotency_key_returns_the_first_result(session: dict) -> None:
    client = client_for(session, "retrying")
    headers = {"Idempotency-Key": "create-1"}
    first = client.conversations.create(metadata={"n": "1"}, extra_headers=headers)
    second = client.conversations.create(metadata={"n": "2"}, extra_headers=headers)
    assert second.id == first.id and second.metadata == {"n": "1"}
    key = {"Idempotency-Key": "append-1"}
    for _ in range(3):
        client.conversations.items.create(
            first.id, items=[{"role": "user", "content": "once"}], extra_headers=key
        )
    assert len(list(client.conversations.items.list(first.id))) == 1


def test_unsupported_items_are_400_naming_the_param(session: dict) -> None:
    client = client_for(session, "acme")
    with pytest.raises(openai.BadRequestError) as caught:
        client.conversations.create(
            items=[{"role": "user", "content": [
                {"type": "input_image", "image_url": "https://example.com/x.png"}]}]
        )  # fmt: skip
    assert caught.value.body["param"] == "items[0].content[0].type"


def test_restarts_lose_no_acknowledged_write(
    session: dict, session_env: dict, postgres_server: PostgresServer
) -> None:
    client = client_for(session, "durable")
    conv = client.conversations.create(items=[{"role": "user", "content": "before"}])
    session["proc"].stop()
    session["proc"] = start(session_env, session["logs"] / "session-2.log")
    client = client_for(session, "durable")
    assert [i.content[0].text for i in client.conversations.items.list(conv.id)] == ["before"]
    client.conversations.items.create(conv.id, items=[{"role": "user", "content": "between"}])
    postgres_server.stop()
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            client.conversations.retrieve(conv.id)
        assert caught.value.status_code == 503
        assert caught.value.response.headers["retry-after"] == "1"
    finally:
        postgres_server.start()
    texts = [i.content[0].text for i in client.conversations.items.list(conv.id, order="asc")]
    assert texts == ["before", "between"]
