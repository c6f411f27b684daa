"""Admission under pressure (429 when the queue is full, 503 at its deadline, places given
back by clients that leave), on real worker processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, metric_value

NO_EOS = {"0": -100, "1": -100, "2": -100}


def long_body(model: str, max_tokens: int = 1500, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "max_tokens": max_tokens,
        "logit_bias": NO_EOS,
        **extra,
    }


async def wait_load(client: httpx.AsyncClient, timeout: float = 60, **want: int) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        load = (await client.get("/load")).json()
        if all(load[k] == v for k, v in want.items()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"load never reached {want}: {load}")


async def test_queued_client_that_leaves_gives_its_place_back_at_once(
    spawn_worker: Callable[..., ServiceProcess],
) -> None:
    proc = spawn_worker(max_queue="1", queue_timeout_seconds="300").wait_ready()
    async with httpx.AsyncClient(base_url=proc.url, timeout=300) as client:
        holder = asyncio.create_task(client.post("/v1/chat/completions", json=long_body(MODEL)))
        await wait_load(client, in_flight=1)
        async with httpx.AsyncClient(base_url=proc.url, timeout=300) as leaving_client:
            leaving = asyncio.create_task(
                leaving_client.post("/v1/chat/completions", json=long_body(MODEL, 5))
            )
            await wait_load(client, queued=1)
            leaving.cancel()  # the client goes away while waiting in the queue
        started = time.monotonic()
        await wait_load(client, timeout=5, queued=0)
        assert time.monotonic() - started < 2
        # Its place is free: the next request queues instead of getting a 429.
        nxt = asyncio.create_task(client.post("/v1/chat/completions", json=long_body(MODEL, 2)))
        await wait_load(client, queued=1)
        holder.cancel()
        assert (await nxt).status_code == 200
        await wait_load(client, in_flight=0, queued=0)


async def test_relay_overload_is_a_fast_429(
    spawn_worker: Callable[..., ServiceProcess], llama_server: Any
) -> None:
    proc = spawn_worker(
        backend="openai-compatible",
        model_name="relay",
        engine_url=llama_server.url,
        max_concurrency="1",
        max_queue="1",
        queue_timeout_seconds="300",
    ).wait_ready()
    async with httpx.AsyncClient(base_url=proc.url, timeout=300) as client:
        busy = [
            asyncio.create_task(
                client.post("/v1/chat/completions", json=long_body("relay", 150 - 100 * i))
            )
            for i in range(2)
        ]
        await wait_load(client, in_flight=1, queued=1)
        started = time.monotonic()
        rejected = await client.post("/v1/chat/completions", json=long_body("relay", 5))
        assert time.monotonic() - started < 1.0
        assert rejected.status_code == 429
        assert rejected.headers["retry-after"] == "1"
        err = rejected.json()["error"]
        assert err["code"] == "overloaded" and err["type"] == "server_error" and err["message"]
        assert [(await t).status_code for t in busy] == [200, 200]
        text = (await client.get("/metrics")).text
    assert (
        metric_value(text, "switchyard_worker_rejected_requests_total", {"reason": "queue_full"})
        == 1
    )
    ok = {"endpoint": "chat_completions", "status": "429"}
    assert metric_value(text, "switchyard_worker_requests_total", ok) == 1


async def test_queue_deadline_gives_503_with_retry_after(
    spawn_worker: Callable[..., ServiceProcess],
) -> None:
    proc = spawn_worker(queue_timeout_seconds="0.5", max_queue="4").wait_ready()
    async with httpx.AsyncClient(base_url=proc.url, timeout=300) as client:
        holder = asyncio.create_task(client.post("/v1/chat/completions", json=long_body(MODEL)))
        await wait_load(client, in_flight=1)
        waited = await client.post("/v1/chat/completions", json=long_body(MODEL, 2))
        assert waited.status_code == 503
        assert waited.headers["retry-after"] == "2"
        assert waited.json()["error"]["code"] == "overloaded"
        text = (await client.get("/metrics")).text
        timeouts = {"reason": "queue_timeout"}
        assert metric_value(text, "switchyard_worker_rejected_requests_total", timeouts) == 1
        holder.cancel()
        await wait_load(client, in_flight=0)


async def test_overload_gives_fast_429_with_retry_after(
    spawn_worker: Callable[..., ServiceProcess],
) -> None:
    # A generous queue deadline: on a busy machine the queued request must not time out.
    proc = spawn_worker(max_queue="1", queue_timeout_seconds="300").wait_ready()
    async with (
        httpx.AsyncClient(base_url=proc.url, timeout=300) as client,
        httpx.AsyncClient(base_url=proc.url, timeout=300) as holding_client,
    ):
        holder = asyncio.create_task(
            holding_client.post("/v1/chat/completions", json=long_body(MODEL))
        )
        await wait_load(client, in_flight=1)
        queued = asyncio.create_task(client.post("/v1/chat/completions", json=long_body(MODEL, 2)))
        await wait_load(client, in_flight=1, queued=1)
        started = time.monotonic()
        rejected = await client.post("/v1/chat/completions", json=long_body(MODEL, 2))
        elapsed = time.monotonic() - started
        assert rejected.status_code == 429
        assert rejected.headers["retry-after"] == "1"
        assert rejected.json()["error"]["code"] == "overloaded"
        assert elapsed < 1.0
        holder.cancel()  # its client leaves; the queued request runs next
        assert (await queued).status_code == 200
