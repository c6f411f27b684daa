"""The gateway in front of two real model-workers."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, free_port

from .conftest import AUTH, served, start_gateway, start_worker

HI = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def test_round_robin_spreads_requests_over_workers(
    tmp_path: Path, worker: ServiceProcess, second_worker: ServiceProcess
) -> None:
    gw = start_gateway(
        tmp_path, [{"url": worker.url}, {"url": second_worker.url}], routing_policy="round-robin"
    )
    try:
        before = served(worker), served(second_worker)
        for _ in range(4):
            r = httpx.post(f"{gw.url}/v1/chat/completions", json=HI, headers=AUTH, timeout=30)
            assert r.status_code == 200
        assert (served(worker) - before[0], served(second_worker) - before[1]) == (2, 2)
        models = httpx.get(f"{gw.url}/v1/models", headers=AUTH).json()
        assert [m["id"] for m in models["data"]] == [MODEL]
    finally:
        gw.stop()


def test_dead_worker_is_retried_elsewhere_before_first_byte(
    tmp_path: Path, worker: ServiceProcess
) -> None:
    doomed_port = free_port()
    doomed = start_worker(tmp_path, doomed_port).wait_ready()
    # A long probe interval: the gateway still believes the dead worker is healthy.
    gw = start_gateway(
        tmp_path, [{"url": doomed.url}, {"url": worker.url}], probe_interval_seconds="60"
    )
    try:
        doomed.stop(signal.SIGKILL)
        for stream in (False, True, False, True):
            r = httpx.post(
                f"{gw.url}/v1/chat/completions",
                json={**HI, "stream": stream},
                headers=AUTH,
                timeout=30,
            )
            assert r.status_code == 200, r.text
            if stream:
                assert r.text.rstrip().endswith("data: [DONE]")
    finally:
        gw.stop()


def test_known_model_with_no_reachable_instance_is_503(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gw = start_gateway(tmp_path, [{"url": dead, "models": [MODEL]}])
    try:
        r = httpx.post(f"{gw.url}/v1/chat/completions", json=HI, headers=AUTH)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == "server_error"
        unknown = httpx.post(
            f"{gw.url}/v1/chat/completions", json={**HI, "model": "x"}, headers=AUTH
        )
        assert unknown.status_code == 404
        assert httpx.get(f"{gw.url}/v1/models", headers=AUTH).json()["data"] == []
    finally:
        gw.stop()


def test_request_body_over_the_limit_is_413_before_any_forwarding(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gw = start_gateway(tmp_path, [{"url": dead, "models": [MODEL]}], max_body_bytes="4096")
    try:
        big = {**HI, "messages": [{"role": "user", "content": "x" * 5000}]}
        r = httpx.post(f"{gw.url}/v1/chat/completions", json=big, headers=AUTH)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "request_too_large"
        assert r.headers["x-request-id"]
        # Just under the limit goes on to routing (503 here: the only instance is down).
        small = {**HI, "messages": [{"role": "user", "content": "x" * 3000}]}
        assert (
            httpx.post(f"{gw.url}/v1/chat/completions", json=small, headers=AUTH).status_code == 503
        )
    finally:
        gw.stop()


def test_the_public_api_serves_no_schema_or_docs_pages(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, [])
    try:
        for path in ("/openapi.json", "/docs", "/redoc"):
            r = httpx.get(f"{gw.url}{path}")
            assert r.status_code == 404, path
            assert r.json()["error"]["code"] == "not_found"
        assert httpx.get(f"{gw.url}/healthz").status_code == 200
    finally:
        gw.stop()
