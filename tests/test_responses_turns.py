"""Responses through the gateway with the official ``openai`` SDK: multi-turn exchanges on
the real model, whose prompt holds the earlier turns (``usage.input_tokens`` grows)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.stateful import MODEL, SESSION_TOKEN, Stateful

pytestmark = pytest.mark.timeout(600)


def test_previous_response_id_chaining(stateful: Stateful) -> None:
    client = stateful.client()
    first = client.responses.create(
        model=MODEL, input="My name is Ada. Say hello.", max_output_tokens=16,
        instructions="Answer briefly.", temperature=0,
    )  # fmt: skip
    assert first.id.startswith("resp_") and first.status in ("completed", "incomplete")
    assert first.output_text and first.usage.output_tokens > 0
    second = client.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id,
        max_output_tokens=16, temperature=0,
    )  # fmt: skip
    third = client.responses.create(
        model=MODEL, input="Thanks!", previous_response_id=second.id, max_output_tokens=8,
        temperature=0,
    )  # fmt: skip
    # The worker saw the earlier turns: its own prompt token counts grow turn by turn.
    assert first.usage.input_tokens < second.usage.input_tokens < third.usage.input_tokens
    # Every earlier item of the chain has its count cached with the session service: the
    # inputs when their turn was recorded, the answers by the next turn that counted them.
    context = httpx.post(
        f"{stateful.session.url}/v1/context",
        json={"model": MODEL, "previous_response_id": third.id, "budget": None},
        headers={"authorization": f"Bearer {SESSION_TOKEN}", "x-switchyard-tenant": "default"},
    ).json()
    assert len(context["items"]) == 6
    assert all(entry["tokens"] for entry in context["items"][:4]), context["items"]
    assert second.previous_response_id == first.id
    stored = client.responses.retrieve(second.id)
    assert stored.output_text == second.output_text and stored.usage == second.usage
    inputs = client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in inputs.data] == ["What is my name?"]
    client.responses.delete(third.id)
    with pytest.raises(Exception) as gone:
        client.responses.retrieve(third.id)
    assert getattr(gone.value, "status_code", None) == 404


def test_conversation_turns_store_their_items(stateful: Stateful) -> None:
    client = stateful.client()
    question = "What is my favourite colour?"
    alone = client.responses.create(model=MODEL, input=question, store=False,
                                    max_output_tokens=8, temperature=0)  # fmt: skip
    conv = client.conversations.create(items=[
        {"role": "user", "content": "My favourite colour is green."},
        {"role": "assistant", "content": "Noted: green."},
    ])  # fmt: skip
    first = client.responses.create(model=MODEL, input=question, conversation=conv.id,
                                    max_output_tokens=8, temperature=0)  # fmt: skip
    second = client.responses.create(model=MODEL, input="Say it again.", conversation=conv.id,
                                     max_output_tokens=8, temperature=0)  # fmt: skip
    # The stored items reached the worker's prompt, and each turn adds to it.
    assert alone.usage.input_tokens < first.usage.input_tokens < second.usage.input_tokens
    assert first.conversation.id == conv.id
    texts = [m.content[0].text for m in client.conversations.items.list(conv.id, order="asc")]
    assert texts == ["My favourite colour is green.", "Noted: green.", question,
                     first.output_text, "Say it again.", second.output_text]  # fmt: skip


def test_stream_events_in_order_then_chain(stateful: Stateful) -> None:
    client = stateful.client()
    events = list(client.responses.create(model=MODEL, input="Say hello.", stream=True,
                                          max_output_tokens=12, temperature=0))  # fmt: skip
    kinds = [e.type for e in events]
    terminal = kinds[-1]
    assert terminal in ("response.completed", "response.incomplete")
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done",
                            "response.output_item.done"]  # fmt: skip
    deltas = kinds[4:-4]
    assert deltas and set(deltas) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == text and final.usage.output_tokens > 0
    assert client.responses.retrieve(final.id).output_text == text
    # The streamed turn was stored: chaining on it puts it in the next prompt.
    with client.responses.stream(model=MODEL, input="Reply with one word: yes.",
                                 previous_response_id=final.id, max_output_tokens=200,
                                 temperature=0) as stream:  # fmt: skip
        streamed = [e.type for e in stream]
        chained = stream.get_final_response()
    assert streamed[-1] == "response.completed" and chained.status == "completed"
    assert chained.usage.input_tokens > final.usage.input_tokens


def test_max_output_tokens_reached_is_incomplete(stateful: Stateful) -> None:
    client = stateful.client()
    r = client.responses.create(model=MODEL, input="Write a long story about a dragon.",
                                max_output_tokens=3, store=False)  # fmt: skip
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 3
