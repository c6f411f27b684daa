"""``client.responses.connect()``: the Responses WebSocket through the gateway. Two turns on
one connection, chained; a second ``response.create`` while one runs is refused; closing the
socket mid-generation is a cancel the worker sees."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.support.procs import ServiceProcess, metric_value
from tests.support.stateful import MODEL, Stateful

# Real processes on a shared two-core machine: starting them can take minutes.
pytestmark = pytest.mark.timeout(600)


def finished(event_type: str) -> bool:
    return event_type in ("response.completed", "response.incomplete", "response.failed")


def cancelled(worker: ServiceProcess) -> float:
    text = httpx.get(f"{worker.url}/metrics").text
    return metric_value(text, "switchyard_worker_generations_total", {"finish_reason": "cancelled"})


def test_turns_over_one_socket(stateful: Stateful, worker: ServiceProcess) -> None:
    client = stateful.client()
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="My name is Ada. Say hi.",
                                   max_output_tokens=8, temperature=0)  # fmt: skip
        first_events = []
        for event in connection:
            first_events.append(event)
            if finished(event.type):
                break
        kinds = [e.type for e in first_events]
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert [e.sequence_number for e in first_events] == list(range(len(first_events)))
        first = first_events[-1].response
        connection.response.create(model=MODEL, input="What is my name?",
                                   previous_response_id=first.id, max_output_tokens=8,
                                   temperature=0)  # fmt: skip
        # A second create while this one runs: an error event, no second turn.
        connection.response.create(model=MODEL, input="Interleave me.", max_output_tokens=8)
        second, errors = None, []
        for event in connection:
            if event.type == "error":
                errors.append(event)
            if finished(event.type):
                second = event.response
                break
        assert [e.code for e in errors] == ["response_in_progress"]
        assert second is not None and second.previous_response_id == first.id
        # The worker's prompt held the first turn.
        assert second.usage.input_tokens > first.usage.input_tokens
        connection.response.steer(input=[{"role": "user", "content": "x"}],
                                  previous_response_id=second.id)  # fmt: skip
        assert connection.recv().code == "unsupported_event"
    # Closing mid-generation: the worker cancels the generation.
    before = cancelled(worker)
    with client.responses.connect() as connection:
        connection.response.create(model=MODEL, input="Write a very long story about a dragon.",
                                   max_output_tokens=1000, store=False)  # fmt: skip
        for event in connection:
            if event.type == "response.output_text.delta":
                break  # generating: leave now
    deadline = time.monotonic() + 60
    while cancelled(worker) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cancelled(worker) == before + 1


def test_socket_upgrade_needs_a_key(stateful: Stateful) -> None:
    client = openai.OpenAI(base_url=f"{stateful.gateway.url}/v1", api_key="sk-wrong",
                           max_retries=0)  # fmt: skip
    with pytest.raises(Exception) as refused, client.responses.connect() as connection:
        connection.recv()
    assert "403" in str(refused.value) or "1008" in str(refused.value)
