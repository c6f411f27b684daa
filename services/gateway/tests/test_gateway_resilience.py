"""Breakers, mid-stream failures, load-aware routing and backpressure, with real workers."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, metric_value

from .conftest import AUTH, served, start_gateway, start_worker

HI = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Tell me a very long story."}],
    "max_tokens": 600,
    "logit_bias": {"0": -100, "1": -100, "2": -100},
}


def breaker_state(gw: ServiceProcess, instance: str) -> float:
    text = httpx.get(f"{gw.url}/metrics").text
    return metric_value(text, "switchyard_gateway_breaker_state", {"instance": instance})


def test_killed_worker_trips_its_breaker_and_no_request_fails_then_it_recovers(
    tmp_path: Path, worker: ServiceProcess
) -> None:
    doomed = start_worker(tmp_path).wait_ready()
    gw = start_gateway(
        tmp_path,
        [{"url": doomed.url, "id": "doomed"}, {"url": worker.url, "id": "steady"}],
        routing_policy="round-robin", probe_interval_seconds="60",
        breaker_fail_max="2", breaker_reset_seconds="1",
    )  # fmt: skip
    try:
        doomed.stop(signal.SIGKILL)
        for _ in range(8):
            r = httpx.post(f"{gw.url}/v1/chat/completions", json=HI, headers=AUTH, timeout=30)
            assert r.status_code == 200, r.text
        assert breaker_state(gw, "doomed") == 2  # open
        text = httpx.get(f"{gw.url}/metrics").text
        assert (
            metric_value(text, "switchyard_gateway_retries_total", {"reason": "upstream_error"})
            >= 2
        )

        revived = start_worker(tmp_path, doomed.port).wait_ready()
        try:
            deadline = time.monotonic() + 20
            before = served(revived)
            while served(revived) == before and time.monotonic() < deadline:
                r = httpx.post(f"{gw.url}/v1/chat/completions", json=HI, headers=AUTH, timeout=30)
                assert r.status_code == 200
                time.sleep(0.2)
            assert served(revived) > before, "half-open trial never reached the revived worker"
            assert breaker_state(gw, "doomed") == 0  # closed again
        finally:
            revived.stop()
    finally:
        gw.stop()


def test_stream_broken_after_first_byte_ends_with_error_event_and_is_not_retried(
    tmp_path: Path, worker: ServiceProcess
) -> None:
    doomed = start_worker(tmp_path).wait_ready()
    gw = start_gateway(tmp_path, [{"url": doomed.url, "id": "doomed"}, {"url": worker.url}],
                       routing_policy="round-robin")  # fmt: skip
    try:
        before_other = served(worker)
        events: list[str] = []
        body = {**LONG, "stream": True}
        for _ in range(2):  # round-robin: one of the two lands on the doomed worker
            with httpx.stream("POST", f"{gw.url}/v1/chat/completions", json=body, headers=AUTH,
                              timeout=60) as r:  # fmt: skip
                assert r.status_code == 200
                lines = r.iter_lines()
                first = [next(lines) for _ in range(4)]
                if doomed.proc.poll() is None and served(worker) == before_other:
                    doomed.stop(signal.SIGKILL)
                    events = [*first, *lines]
                    break
                r.close()
        assert events, "no stream landed on the doomed worker"
        data = [e for e in events if e.startswith("data: ")]
        assert '"error"' in data[-1]
        assert "data: [DONE]" not in data
        assert served(worker) == before_other  # not retried elsewhere after bytes were sent
    finally:
        gw.stop()


async def test_least_loaded_avoids_the_busy_worker(
    tmp_path: Path, worker: ServiceProcess, second_worker: ServiceProcess
) -> None:
    gw = start_gateway(tmp_path, [{"url": worker.url}, {"url": second_worker.url}])
    try:
        async with httpx.AsyncClient(base_url=gw.url, headers=AUTH, timeout=60) as client:
            long = asyncio.create_task(client.post("/v1/chat/completions", json=LONG))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                loads = [
                    httpx.get(f"{w.url}/load").json()["in_flight"] for w in (worker, second_worker)
                ]
                if sum(loads) == 1:
                    break
                await asyncio.sleep(0.02)
            busy, idle = (worker, second_worker) if loads[0] else (second_worker, worker)
            before = served(busy), served(idle)
            for _ in range(4):
                r = await client.post("/v1/chat/completions", json=HI)
                assert r.status_code == 200, r.text
            assert served(idle) - before[1] == 4
            assert served(busy) == before[0]
            long.cancel()
    finally:
        gw.stop()


async def test_gateway_backpressure_answers_503_fast(
    tmp_path: Path, worker: ServiceProcess
) -> None:
    gw = start_gateway(tmp_path, [{"url": worker.url}], max_in_flight="1")
    try:
        async with httpx.AsyncClient(base_url=gw.url, headers=AUTH, timeout=60) as client:
            long = asyncio.create_task(client.post("/v1/chat/completions", json=LONG))
            while httpx.get(f"{worker.url}/load").json()["in_flight"] == 0:
                await asyncio.sleep(0.02)
            started = time.monotonic()
            r = await client.post("/v1/chat/completions", json=HI)
            assert time.monotonic() - started < 1.0
            assert r.status_code == 503
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "overloaded"
            long.cancel()
        text = httpx.get(f"{gw.url}/metrics").text
        assert (
            metric_value(
                text, "switchyard_gateway_backpressure_rejections_total", {"scope": "gateway"}
            )
            == 1
        )
    finally:
        gw.stop()


async def _held_by_a_stream(gw: ServiceProcess, worker: ServiceProcess) -> httpx.Response:
    """A request sent while a long stream through ``gw`` is under way on ``worker``."""
    async with httpx.AsyncClient(base_url=gw.url, headers=AUTH, timeout=60) as client:
        stream_cm = client.stream("POST", "/v1/chat/completions", json={**LONG, "stream": True})
        stream = await stream_cm.__aenter__()
        try:
            assert stream.status_code == 200
            async for _ in stream.aiter_bytes():
                break  # the stream is flowing: its headers were sent long ago
            started = time.monotonic()
            r = await client.post("/v1/chat/completions", json=HI)
            assert time.monotonic() - started < 1.0
            return r
        finally:
            await stream_cm.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("setting", "code", "scope"),
    [("max_in_flight", "overloaded", "gateway"),
     ("max_in_flight_per_instance", "instances_at_capacity", "instance")],
)  # fmt: skip
async def test_a_running_stream_holds_its_slots_until_it_ends(
    tmp_path: Path, worker: ServiceProcess, setting: str, code: str, scope: str
) -> None:
    gw = start_gateway(tmp_path, [{"url": worker.url}], **{setting: "1"})
    try:
        r = await _held_by_a_stream(gw, worker)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == code
        text = httpx.get(f"{gw.url}/metrics").text
        rejections = "switchyard_gateway_backpressure_rejections_total"
        assert metric_value(text, rejections, {"scope": scope}) == 1
        # Once the stream is gone, its slots are free again.
        deadline = time.monotonic() + 10
        while (r := httpx.post(f"{gw.url}/v1/chat/completions", json=HI, headers=AUTH,
                               timeout=60)).status_code == 503:  # fmt: skip
            assert time.monotonic() < deadline, "the stream's slot was never released"
            await asyncio.sleep(0.05)
        assert r.status_code == 200
    finally:
        gw.stop()


def test_session_affinity_keeps_a_conversation_on_one_worker(
    tmp_path: Path, worker: ServiceProcess, second_worker: ServiceProcess
) -> None:
    gw = start_gateway(tmp_path, [{"url": worker.url}, {"url": second_worker.url}],
                       routing_policy="session-affinity")  # fmt: skip
    try:
        for session in ("alpha", "beta", "gamma", "delta"):
            before = served(worker), served(second_worker)
            for i in range(3):
                headers = {**AUTH, "x-session-id": session} if i % 2 else AUTH
                body = HI if i % 2 else {**HI, "user": session}
                assert httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers,
                                  timeout=30).status_code == 200  # fmt: skip
            deltas = served(worker) - before[0], served(second_worker) - before[1]
            assert sorted(deltas) == [0, 3], (session, deltas)
    finally:
        gw.stop()
