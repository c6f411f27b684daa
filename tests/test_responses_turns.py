"""Responses through the gateway with the official ``openai`` SDK: multi-turn exchanges on
the real model, whose prompt holds the earlier turns (``usage.input_tokens`` grows)."""

from __future__ import annotations

import pytest

from tests.support.stateful import MODEL, Stateful

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
    assert second.previous_response_id == first.id
    stored = client.responses.retrieve(second.id)
    assert stored.output_text == second.output_text and stored.usage == second.usage
    inputs = client.responses.input_items.list(second.id)
    assert [i.content[0].text for i in inputs.data] == ["What is my name?"]
    client.responses.delete(third.id)
    with pytest.raises(Exception) as gone:
        client.responses.retrieve(third.id)
    assert getattr(gone.value, "status_code", None) == 404
