"""The openai-compatible backend in front of the real llama.cpp OpenAI server (llama_cpp.server)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.support.procs import ServiceProcess, metric_value

from .conftest import wait_for

RELAY_MODEL = "smollm2-relay"
ENGINE_MODEL = "smol-engine"
HI = [{"role": "user", "content": "Hi"}]
NO_EOS = {"0": -100, "1": -100, "2": -100}


def post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=120)


def sse(url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any] | str]:
    events: list[dict[str, Any] | str] = []
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=120) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_chat_is_relayed_and_matches_the_engine(relay_worker: ServiceProcess, llama_server) -> None:
    body = {"messages": HI, "max_tokens": 8, "temperature": 0}
    via_worker = post(relay_worker.url, "/v1/chat/completions", {**body, "model": RELAY_MODEL})
    direct = post(llama_server.url, "/v1/chat/completions", {**body, "model": ENGINE_MODEL})
    assert via_worker.status_code == 200, via_worker.text
    got, want = via_worker.json(), direct.json()
    assert got["model"] == RELAY_MODEL
    assert got["choices"][0]["message"]["content"] == want["choices"][0]["message"]["content"]
    assert got["usage"] == want["usage"]


def test_stream_is_relayed_chunk_by_chunk(relay_worker: ServiceProcess) -> None:
    body = {
        "model": RELAY_MODEL,
        "messages": HI,
        "max_tokens": 12,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": NO_EOS,
    }
    events = sse(relay_worker.url, "/v1/chat/completions", body)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if isinstance(e, dict)]
    assert all(c["model"] == RELAY_MODEL for c in chunks)
    text_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    # One chunk per token from llama.cpp: the relay neither buffers nor merges them.
    assert len(text_chunks) >= 10
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] == "length"
    # llama_cpp.server sends no usage chunk; the worker adds one from its own counts.
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["completion_tokens"] == 12
    assert usage["prompt_tokens"] > 0


def test_stream_without_include_usage_has_no_usage_chunk(relay_worker: ServiceProcess) -> None:
    body = {"model": RELAY_MODEL, "messages": HI, "max_tokens": 4, "stream": True}
    events = sse(relay_worker.url, "/v1/chat/completions", body)
    chunks = [e for e in events if isinstance(e, dict)]
    assert chunks and all(c["choices"] for c in chunks)
    assert not any("usage" in c and c["usage"] for c in chunks)


def test_unknown_fields_reach_the_engine(relay_worker: ServiceProcess) -> None:
    # `grammar` is llama_cpp.server's own extension: output constrained to "yes" or "no".
    body = {
        "model": RELAY_MODEL,
        "messages": [{"role": "user", "content": "Is the sky blue?"}],
        "max_tokens": 10,
        "grammar": 'root ::= "yes" | "no"',
    }
    r = post(relay_worker.url, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] in ("yes", "no")


def test_tools_are_passed_through(relay_worker: ServiceProcess) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "record_person",
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
            },
        },
    }
    body = {
        "model": RELAY_MODEL,
        "messages": [{"role": "user", "content": "Jason is 30 years old."}],
        "max_tokens": 60,
        "temperature": 0,
        "tools": [tool],
        "tool_choice": {"type": "function", "function": {"name": "record_person"}},
    }
    r = post(relay_worker.url, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "record_person"
    args = json.loads(call["function"]["arguments"])
    assert set(args) == {"name", "age"}


def test_completions_whole_and_streamed(relay_worker: ServiceProcess) -> None:
    body = {"model": RELAY_MODEL, "prompt": "The capital of France is", "max_tokens": 6}
    whole = post(relay_worker.url, "/v1/completions", {**body, "temperature": 0})
    assert whole.status_code == 200, whole.text
    assert whole.json()["object"] == "text_completion"
    assert whole.json()["usage"]["completion_tokens"] <= 6
    events = sse(relay_worker.url, "/v1/completions", {**body, "temperature": 0, "stream": True})
    text = "".join(e["choices"][0]["text"] for e in events if isinstance(e, dict) and e["choices"])
    assert text == whole.json()["choices"][0]["text"]


def test_tokenize_counts_like_the_engine(relay_worker: ServiceProcess) -> None:
    messages = [{"role": "user", "content": "Count my tokens, please."}]
    counted = post(relay_worker.url, "/tokenize", {"messages": messages}).json()
    usage = post(
        relay_worker.url,
        "/v1/chat/completions",
        {"model": RELAY_MODEL, "messages": messages, "max_tokens": 1},
    ).json()["usage"]
    assert counted["count"] == usage["prompt_tokens"]
    text = post(relay_worker.url, "/tokenize", {"prompt": "hello world"}).json()
    assert 2 <= text["count"] <= 4


def test_engine_errors_keep_their_status_and_message(relay_worker: ServiceProcess) -> None:
    body = {"model": RELAY_MODEL, "messages": [{"role": "user", "content": "word " * 3000}]}
    r = post(relay_worker.url, "/v1/chat/completions", body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "context" in err["message"].lower() or "tokens" in err["message"].lower()
    assert err["type"] == "invalid_request_error"


def test_embeddings_are_not_served_unless_enabled(relay_worker: ServiceProcess) -> None:
    r = post(relay_worker.url, "/v1/embeddings", {"model": RELAY_MODEL, "input": "hi"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unsupported_endpoint"


def test_metrics_count_relayed_requests(relay_worker: ServiceProcess) -> None:
    before = httpx.get(f"{relay_worker.url}/metrics").text
    body = {"model": RELAY_MODEL, "messages": HI, "max_tokens": 5, "stream": True}
    sse(relay_worker.url, "/v1/chat/completions", body)
    after = httpx.get(f"{relay_worker.url}/metrics").text

    def delta(name: str, labels: dict[str, str] | None = None) -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    ok = {"endpoint": "chat_completions", "status": "200"}
    assert delta("switchyard_worker_requests_total", ok) == 1
    assert delta("switchyard_worker_time_to_first_token_seconds_count") == 1
    assert 1 <= delta("switchyard_worker_completion_tokens_total") <= 5
    assert delta("switchyard_worker_prompt_tokens_total") > 0


def test_disconnect_mid_stream_frees_the_slot(relay_worker: ServiceProcess) -> None:
    body = {
        "model": RELAY_MODEL,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": 1500,
        "stream": True,
        "logit_bias": NO_EOS,
    }
    url = f"{relay_worker.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=60) as r:  # a cold engine is slow
        assert r.status_code == 200
        seen = 0
        for line in r.iter_lines():
            seen += line.startswith("data: ")
            if seen == 4:
                break
    idle = lambda: httpx.get(f"{relay_worker.url}/load").json()["in_flight"] == 0  # noqa: E731
    wait_for(idle, 30, "the relayed stream to free its slot")
    # The engine stopped too: a short request right after does not wait behind the
    # abandoned 1500-token generation (minutes on a loaded machine).
    started = time.monotonic()
    quick = {"model": RELAY_MODEL, "messages": HI, "max_tokens": 2}
    assert post(relay_worker.url, "/v1/chat/completions", quick).status_code == 200
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"{elapsed:.1f}s: the engine kept generating for the departed client"
