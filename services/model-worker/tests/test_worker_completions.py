"""/v1/completions on the in-process llama.cpp backend (real SmolLM2-135M)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess

from .openai_contract import Completion, check_stream

NO_EOS = {"0": -100, "1": -100, "2": -100}


def post(worker: ServiceProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{worker.url}{path}", json=body, timeout=120)


def stream_events(worker: ServiceProcess, body: dict[str, Any]) -> list[Any]:
    events: list[Any] = []
    with httpx.stream("POST", f"{worker.url}/v1/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:] if line == "data: [DONE]" else json.loads(line[6:]))
    return events


def test_completion_whole(worker: ServiceProcess) -> None:
    body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 6, "temperature": 0}
    r = post(worker, "/v1/completions", {**body, "logit_bias": NO_EOS})
    assert r.status_code == 200, r.text
    out = r.json()
    Completion.model_validate(out)  # the OpenAI shape, exactly
    choice = out["choices"][0]
    assert choice["finish_reason"] == "length" and choice["text"]
    assert out["usage"]["completion_tokens"] == 6
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + 6


def test_completion_stream_matches_whole(worker: ServiceProcess) -> None:
    body = {
        "model": MODEL,
        "prompt": "The three primary colors are",
        "max_tokens": 8,
        "temperature": 0,
        "logit_bias": NO_EOS,
    }
    whole = post(worker, "/v1/completions", body).json()
    events = stream_events(
        worker, {**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    check_stream(chunks, Completion)
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert text == whole["choices"][0]["text"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"


def test_echo_and_stop_sequences(worker: ServiceProcess) -> None:
    prompt = "1, 2, 3, 4,"
    body = {"model": MODEL, "prompt": prompt, "max_tokens": 20, "temperature": 0}
    free = post(worker, "/v1/completions", body).json()["choices"][0]["text"]
    echoed = post(worker, "/v1/completions", {**body, "echo": True}).json()
    assert echoed["choices"][0]["text"] == prompt + free
    assert " 6" in free
    stopped = post(worker, "/v1/completions", {**body, "stop": [" 6"]}).json()["choices"][0]
    assert stopped["finish_reason"] == "stop"
    assert stopped["text"] == free[: free.index(" 6")]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": ["a", "b"]}, "prompt", "unsupported_value"),
        ({"prompt": "a", "suffix": "b"}, "suffix", "unsupported_parameter"),
        ({"prompt": "word " * 3000}, "prompt", "context_length_exceeded"),
        ({"prompt": "a", "n": 3}, "n", "unsupported_value"),
    ],
    ids=["two-prompts", "suffix", "too-long", "n"],
)
def test_bad_completion_requests(worker: ServiceProcess, body: dict, param: str, code: str) -> None:
    r = post(worker, "/v1/completions", {"model": MODEL, **body})
    assert r.status_code == 400, r.text
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code)
