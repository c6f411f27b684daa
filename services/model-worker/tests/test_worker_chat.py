"""/v1/chat/completions on the in-process llama.cpp backend (real SmolLM2-135M): the
OpenAI shapes, errors, metrics and a client leaving mid-stream."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, metric_value

from .conftest import wait_for
from .openai_contract import ChatCompletion, ChatCompletionChunk, check_stream

HI = [{"role": "user", "content": "Hi"}]


def post(worker: ServiceProcess, body: dict) -> httpx.Response:
    return httpx.post(f"{worker.url}/v1/chat/completions", json=body, timeout=60)


def test_chat_completion_has_real_usage_and_finish_reason(worker: ServiceProcess) -> None:
    r = post(worker, {"model": MODEL, "messages": HI, "max_tokens": 5, "temperature": 0})
    assert r.status_code == 200
    body = r.json()
    ChatCompletion.model_validate(body)  # the OpenAI shape, exactly
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 5


def test_stream_chunks_have_the_openai_shape_and_match_the_whole_answer(
    worker: ServiceProcess,
) -> None:
    body = {
        "model": MODEL,
        "messages": HI,
        "max_tokens": 6,
        "temperature": 0,
        "logit_bias": {"0": -100, "1": -100, "2": -100},
    }
    whole = post(worker, body).json()
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{worker.url}/v1/chat/completions", json=streamed, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    check_stream(chunks, ChatCompletionChunk)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


def test_seeded_sampling_repeats(worker: ServiceProcess) -> None:
    body = {"model": MODEL, "messages": HI, "max_tokens": 12, "temperature": 1.0, "seed": 7}
    first = post(worker, body).json()["choices"][0]["message"]["content"]
    assert post(worker, body).json()["choices"][0]["message"]["content"] == first


def test_developer_role_and_content_parts_are_accepted(worker: ServiceProcess) -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
    ]
    r = post(worker, {"model": MODEL, "messages": messages, "max_tokens": 4})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"model": "other", "messages": HI}, 404, "model", "model_not_found"),
        ({"model": MODEL}, 400, "messages", "missing_required_parameter"),
        ({"model": MODEL, "messages": HI, "n": 2}, 400, "n", "unsupported_value"),
        (
            {"model": MODEL, "messages": HI, "tools": [{"type": "function"}]},
            400,
            "tools",
            "unsupported_parameter",
        ),
        ({"model": MODEL, "messages": HI, "logit_bias": {"abc": 1}}, 400, "logit_bias", None),
        (
            {"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]},
            400,
            "messages.0.role",
            "invalid_value",
        ),
        (
            {"model": MODEL, "messages": [{"role": "user", "content": "word " * 3000}]},
            400,
            "messages",
            "context_length_exceeded",
        ),
    ],
    ids=["unknown-model", "no-messages", "n", "tools", "logit-bias", "role", "too-long"],
)
def test_bad_requests_get_openai_errors(
    worker: ServiceProcess, body: dict, status: int, param: str, code: str | None
) -> None:
    r = post(worker, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["param"] == param
    if code:
        assert err["code"] == code


def test_too_long_prompt_in_stream_mode_is_an_http_error_not_a_stream(
    worker: ServiceProcess,
) -> None:
    body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": "word " * 3000}],
    }
    r = post(worker, body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_metrics_count_tokens_and_requests(worker: ServiceProcess) -> None:
    before = httpx.get(f"{worker.url}/metrics").text
    r = post(worker, {"model": MODEL, "messages": HI, "max_tokens": 3, "temperature": 0})
    usage = r.json()["usage"]
    after = httpx.get(f"{worker.url}/metrics").text

    def delta(name: str, labels: dict | None = None) -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    assert delta("switchyard_worker_completion_tokens_total") == usage["completion_tokens"]
    assert delta("switchyard_worker_prompt_tokens_total") == usage["prompt_tokens"]
    assert (
        delta("switchyard_worker_requests_total", {"endpoint": "chat_completions", "status": "200"})
        == 1
    )
    assert delta("switchyard_worker_time_to_first_token_seconds_count") == 1
    assert "switchyard_worker_queue_depth 0.0" in after


def test_disconnect_mid_stream_stops_generation(worker: ServiceProcess) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": 1800,
        "stream": True,
        "logit_bias": {"0": -100, "1": -100, "2": -100},
    }
    before = httpx.get(f"{worker.url}/metrics").text
    url = f"{worker.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=60) as r:  # slow on a loaded machine
        assert r.status_code == 200
        lines = 0
        for line in r.iter_lines():
            lines += line.startswith("data: ")
            if lines == 4:
                break
    idle = lambda: httpx.get(f"{worker.url}/load").json()["in_flight"] == 0  # noqa: E731
    wait_for(idle, 5, "the generation to stop")
    after = httpx.get(f"{worker.url}/metrics").text
    cancelled = {"finish_reason": "cancelled"}
    assert metric_value(after, "switchyard_worker_generations_total", cancelled) == (
        metric_value(before, "switchyard_worker_generations_total", cancelled) + 1
    )
    generated = metric_value(after, "switchyard_worker_completion_tokens_total") - metric_value(
        before, "switchyard_worker_completion_tokens_total"
    )
    assert generated < 900


def test_structured_output_is_refused_clearly_on_llamacpp(worker: ServiceProcess) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Give me JSON."}],
        "response_format": {"type": "json_object"},
    }
    r = post(worker, body)
    assert r.status_code == 400
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (
        "response_format",
        "unsupported_parameter",
    )
    plain = {**body, "response_format": {"type": "text"}, "max_tokens": 2}
    assert post(worker, plain).status_code == 200
