"""POST /tokenize on the in-process llama.cpp backend (real SmolLM2-135M): counts that match
the usage of the chat and completion requests they budget for."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess


def post(worker: ServiceProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{worker.url}{path}", json=body, timeout=120)


def test_tokenize_messages_counts_after_the_chat_template(worker: ServiceProcess) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "How many tokens is this?"},
    ]
    counted = post(worker, "/tokenize", {"model": MODEL, "messages": messages})
    assert counted.status_code == 200
    usage = post(
        worker, "/v1/chat/completions", {"model": MODEL, "messages": messages, "max_tokens": 1}
    ).json()["usage"]
    assert counted.json()["count"] == usage["prompt_tokens"]
    assert counted.json()["max_model_len"] == 2048
    # The template adds role markers: more tokens than the raw text alone.
    raw = post(worker, "/tokenize", {"text": "You are terse.How many tokens is this?"}).json()
    assert raw["count"] < counted.json()["count"]


def test_tokenize_text_matches_completion_usage(worker: ServiceProcess) -> None:
    prompt = "Counting tokens for a context budget"
    counted = post(worker, "/tokenize", {"prompt": prompt, "return_tokens": True}).json()
    usage = post(
        worker, "/v1/completions", {"model": MODEL, "prompt": prompt, "max_tokens": 1}
    ).json()["usage"]
    assert counted["count"] == usage["prompt_tokens"] == len(counted["tokens"])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": "a", "messages": [{"role": "user", "content": "b"}]},
        {"model": "x", "text": "a"},
    ],
    ids=["nothing", "both", "unknown-model"],
)
def test_tokenize_rejects_bad_requests(worker: ServiceProcess, body: dict) -> None:
    r = post(worker, "/tokenize", body)
    assert r.status_code in (400, 404)
    assert r.json()["error"]["message"]
