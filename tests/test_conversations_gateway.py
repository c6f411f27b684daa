"""``client.conversations`` through the gateway: every method, pagination both ways, metadata,
idempotent retries, keys on every route, and another tenant's ids answering 404."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.stateful import MODEL, Stateful

# Real processes on a shared two-core machine: starting them can take minutes.
pytestmark = pytest.mark.timeout(600)


def test_every_method_round_trips(stateful: Stateful) -> None:
    client = stateful.client()
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "first"}], metadata={"a": "1"}
    )
    assert conv.id.startswith("conv_") and conv.object == "conversation"
    assert client.conversations.retrieve(conv.id).metadata == {"a": "1"}
    assert client.conversations.update(conv.id, metadata={"a": "2"}).metadata == {"a": "2"}
    assert client.conversations.retrieve(conv.id).metadata == {"a": "2"}
    added = client.conversations.items.create(
        conv.id, items=[{"role": "user", "content": str(i)} for i in range(5)]
    )
    assert [m.content[0].text for m in added.data] == ["0", "1", "2", "3", "4"]
    asc = client.conversations.items.list(conv.id, order="asc", limit=2)
    assert [m.content[0].text for m in asc.data] == ["first", "0"] and asc.has_more
    assert [m.content[0].text for m in asc] == ["first", "0", "1", "2", "3", "4"]
    desc = client.conversations.items.list(conv.id, order="desc", limit=4)
    assert [m.content[0].text for m in desc.data] == ["4", "3", "2", "1"]
    assert [m.content[0].text for m in desc] == ["4", "3", "2", "1", "0", "first"]
    one = client.conversations.items.retrieve(added.data[2].id, conversation_id=conv.id)
    assert one.id == added.data[2].id and one.content[0].text == "2"
    assert client.conversations.items.delete(one.id, conversation_id=conv.id).id == conv.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(one.id, conversation_id=conv.id)
    assert client.conversations.delete(conv.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_idempotent_retry_returns_the_first_result(stateful: Stateful) -> None:
    client = stateful.client()
    key = {"Idempotency-Key": "gateway-create-1"}
    first = client.conversations.create(metadata={"try": "1"}, extra_headers=key)
    again = client.conversations.create(metadata={"try": "2"}, extra_headers=key)
    assert again.id == first.id and again.metadata == {"try": "1"}
    turn_key = {"Idempotency-Key": "gateway-turn-1"}
    one = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4,
                                  conversation=first.id, extra_headers=turn_key)  # fmt: skip
    two = client.responses.create(model=MODEL, input="Hi", max_output_tokens=4,
                                  conversation=first.id, extra_headers=turn_key)  # fmt: skip
    assert two.id == one.id
    # One turn stored: its input and its output, once.
    assert len(list(client.conversations.items.list(first.id))) == 2


def test_every_route_needs_a_key(stateful: Stateful) -> None:
    base = f"{stateful.gateway.url}/v1"
    calls = [
        ("POST", "/conversations"), ("GET", "/conversations/conv_x"),
        ("POST", "/conversations/conv_x"), ("DELETE", "/conversations/conv_x"),
        ("POST", "/conversations/conv_x/items"), ("GET", "/conversations/conv_x/items"),
        ("GET", "/conversations/conv_x/items/msg_x"),
        ("DELETE", "/conversations/conv_x/items/msg_x"), ("POST", "/responses"),
        ("GET", "/responses/resp_x"), ("DELETE", "/responses/resp_x"),
        ("GET", "/responses/resp_x/input_items"),
    ]  # fmt: skip
    for method, path in calls:
        r = httpx.request(method, base + path, json={} if method == "POST" else None)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "missing_api_key"


def test_other_tenants_ids_answer_404(stateful: Stateful) -> None:
    owner, other = stateful.client(), stateful.client(stateful.other_key)
    conv = owner.conversations.create(items=[{"role": "user", "content": "mine"}])
    item = owner.conversations.items.list(conv.id).data[0]
    response = owner.responses.create(model=MODEL, input="Hello", max_output_tokens=4)
    calls = [
        lambda: other.conversations.retrieve(conv.id),
        lambda: other.conversations.update(conv.id, metadata={"x": "y"}),
        lambda: other.conversations.delete(conv.id),
        lambda: other.conversations.items.create(conv.id, items=[{"role": "user",
                                                                  "content": "x"}]),
        lambda: other.conversations.items.list(conv.id),
        lambda: other.conversations.items.retrieve(item.id, conversation_id=conv.id),
        lambda: other.conversations.items.delete(item.id, conversation_id=conv.id),
        lambda: other.responses.retrieve(response.id),
        lambda: other.responses.delete(response.id),
        lambda: other.responses.input_items.list(response.id),
        lambda: other.responses.create(model=MODEL, input="x", previous_response_id=response.id),
        lambda: other.responses.create(model=MODEL, input="x", conversation=conv.id),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(openai.NotFoundError):
            call()
    assert [m.content[0].text for m in owner.conversations.items.list(conv.id)] == ["mine"]
    assert owner.responses.retrieve(response.id).id == response.id
