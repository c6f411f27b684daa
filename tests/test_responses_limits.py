"""Responses at their limits: a conversation longer than the model's context (truncation
auto and disabled, counted by the worker's tokenizer), out-of-scope parameters, and the
session service down (stateful calls 503, stateless ones served)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.procs import ServiceProcess, free_port, metric_value
from tests.support.stateful import KEY, MODEL, Stateful, start_stateful_gateway

# Real processes on a shared two-core machine: starting them can take minutes.
pytestmark = pytest.mark.timeout(600)

# About 60 tokens each: 10 of them pass the small worker's 512-token context.
LONG = "The quick brown fox jumps over the lazy dog. " * 6
CONTEXT = 512


@pytest.fixture(scope="module")
def small_worker(
    stateful: Stateful, tmp_path_factory
) -> Iterator[tuple[openai.OpenAI, ServiceProcess]]:
    """A worker with a 512-token context behind its own gateway (same session service)."""
    tmp = tmp_path_factory.mktemp("small-context")
    port = free_port()
    worker = ServiceProcess(
        "switchyard_model_worker",
        {"SWITCHYARD_MODEL_WORKER_PORT": str(port), "SWITCHYARD_MODEL_WORKER_N_CTX": "512"},
        tmp / "worker.log", port,
    ).wait_ready()  # fmt: skip
    gateway = start_stateful_gateway(tmp, worker.url, stateful.session.url)
    yield openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0), worker
    gateway.stop()
    worker.stop()


def test_truncation_disabled_and_auto_with_real_counts(
    small_worker: tuple[openai.OpenAI, ServiceProcess],
) -> None:
    client, _ = small_worker
    conv = client.conversations.create()
    client.conversations.items.create(
        conv.id, items=[{"role": "user", "content": f"{i}: {LONG}"} for i in range(10)]
    )
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, input="Summarize.", conversation=conv.id,
                                max_output_tokens=16, truncation="disabled")  # fmt: skip
    assert refused.value.code == "context_length_exceeded"
    turn = client.responses.create(model=MODEL, input="Summarize.", conversation=conv.id,
                                   max_output_tokens=16, truncation="auto")  # fmt: skip
    # The newest items that fit: more than half the context, never past it.
    assert CONTEXT // 2 < turn.usage.input_tokens <= CONTEXT - 16
    assert turn.truncation == "auto"
    # The refused turn stored nothing; the truncated one stored its input and output.
    assert len(list(client.conversations.items.list(conv.id))) == 12
    # The gateway counted the one truncated turn and the items it left out.
    metrics = httpx.get(str(client.base_url).removesuffix("v1/") + "metrics").text
    truncated = metric_value(
        metrics, "switchyard_gateway_context_truncations_total", {"model": MODEL}
    )
    dropped = metric_value(
        metrics, "switchyard_gateway_context_dropped_items_total", {"model": MODEL}
    )
    assert truncated == 1 and 1 <= dropped < 10


def test_worker_failing_mid_turn_stores_nothing(
    small_worker: tuple[openai.OpenAI, ServiceProcess],
) -> None:
    """Runs after the other small-worker test: it kills that worker."""
    client, worker = small_worker
    conv = client.conversations.create(items=[{"role": "user", "content": "Hello."}])
    kinds = []
    stream = client.responses.create(model=MODEL, input="Write a long story about a dragon.",
                                     conversation=conv.id, stream=True, max_output_tokens=400,
                                     temperature=0)  # fmt: skip
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta" and worker.proc.poll() is None:
            worker.proc.kill()  # mid-generation
        if event.type == "response.failed":
            failed_id = event.response.id
    assert kinds[-1] == "response.failed" and "response.output_text.delta" in kinds
    # Nothing of the turn was stored: not the response, not its items.
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(failed_id)
    assert [m.content[0].text for m in client.conversations.items.list(conv.id)] == ["Hello."]


def test_out_of_scope_parameters_are_400_naming_them(stateful: Stateful) -> None:
    client = stateful.client()
    cases = [
        ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "https://example.com/a.png"}]}]},
         "input[0].content[0].type"),
        ({"input": [{"role": "user", "content": [
            {"type": "input_file", "file_id": "file_1"}]}]}, "input[0].content[0].type"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
         "input[0].type"),
    ]  # fmt: skip
    for extra, param in cases:
        body = {"model": MODEL, "input": "Hi", **extra}
        with pytest.raises(openai.BadRequestError) as caught:
            client.post("/responses", body=body, cast_to=object)
        assert caught.value.param == param, caught.value.body


@pytest.fixture
def orphan_gateway(stateful: Stateful, worker: ServiceProcess, tmp_path) -> Iterator[str]:
    """A gateway whose session service is down (nothing listens at its address)."""
    gateway = start_stateful_gateway(tmp_path, worker.url, f"http://127.0.0.1:{free_port()}")
    yield gateway.url
    gateway.stop()


def test_session_service_down(orphan_gateway: str) -> None:
    client = openai.OpenAI(base_url=f"{orphan_gateway}/v1", api_key=KEY, max_retries=0)
    stateful_calls = [
        lambda: client.responses.create(model=MODEL, input="Hi", max_output_tokens=4),
        lambda: client.responses.create(model=MODEL, input="Hi", store=False,
                                        previous_response_id="resp_x"),
        lambda: client.responses.create(model=MODEL, input="Hi", store=False,
                                        conversation="conv_x"),
        lambda: client.conversations.create(),
        lambda: client.responses.retrieve("resp_x"),
    ]  # fmt: skip
    for call in stateful_calls:
        with pytest.raises(openai.InternalServerError) as caught:
            call()
        assert caught.value.status_code == 503
        assert caught.value.response.headers["retry-after"] == "1"
    stateless = client.responses.create(model=MODEL, input="Hi", store=False,
                                        max_output_tokens=4)  # fmt: skip
    assert stateless.output_text and stateless.usage.input_tokens > 0
    chat = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert chat.choices[0].message.content
    r = httpx.get(f"{orphan_gateway}/readyz")
    assert r.status_code == 200  # the gateway itself stays ready for stateless traffic
