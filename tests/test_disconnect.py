"""A client that disconnects mid-stream stops generation on the worker."""

from __future__ import annotations

import time

import httpx

from tests.support.fixtures import MODEL, Platform
from tests.support.procs import metric_value

# SmolLM2's end-of-generation tokens (<|endoftext|>, <|im_start|>, <|im_end|>) are banned so
# the model would keep going to max_tokens unless it is stopped.
NO_EOS = {"0": -100, "1": -100, "2": -100}
MAX_TOKENS = 1800


def worker_counters(worker_url: str) -> tuple[float, float]:
    text = httpx.get(f"{worker_url}/metrics").text
    cancelled = metric_value(
        text, "switchyard_worker_generations_total", {"finish_reason": "cancelled"}
    )
    tokens = metric_value(text, "switchyard_worker_completion_tokens_total")
    return cancelled, tokens


def wait_idle(worker_url: str, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if httpx.get(f"{worker_url}/load").json()["in_flight"] == 0:
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError("worker still generating after the client left")


def test_disconnect_mid_stream_through_gateway_stops_generation(platform: Platform) -> None:
    cancelled_before, tokens_before = worker_counters(platform.worker)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": MAX_TOKENS,
        "stream": True,
        "logit_bias": NO_EOS,
    }
    headers = {"Authorization": f"Bearer {platform.api_key}"}
    received = 0
    with httpx.stream(
        "POST", f"{platform.base_url}/chat/completions", json=body, headers=headers
    ) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("data: "):
                received += 1
            if received >= 5:
                break
        # Leaving the block closes the connection mid-stream.
    assert httpx.get(f"{platform.worker}/load").json()["in_flight"] <= 1
    wait_idle(platform.worker)
    cancelled_after, tokens_after = worker_counters(platform.worker)
    assert cancelled_after == cancelled_before + 1
    generated = tokens_after - tokens_before
    assert 4 <= generated < MAX_TOKENS / 2, generated
    # And it stays stopped.
    time.sleep(0.5)
    assert worker_counters(platform.worker)[1] == tokens_after


def test_client_leaving_a_non_streaming_request_stops_generation(platform: Platform) -> None:
    cancelled_before, tokens_before = worker_counters(platform.worker)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": MAX_TOKENS,
        "logit_bias": NO_EOS,
    }
    headers = {"Authorization": f"Bearer {platform.api_key}"}
    try:
        httpx.post(f"{platform.base_url}/chat/completions", json=body, headers=headers, timeout=1.5)
        raise AssertionError("a generation this long cannot finish in 1.5 s")
    except httpx.ReadTimeout:
        pass  # the client gave up and closed its connection
    wait_idle(platform.worker)
    cancelled_after, tokens_after = worker_counters(platform.worker)
    assert cancelled_after == cancelled_before + 1
    assert tokens_after - tokens_before < MAX_TOKENS / 2
