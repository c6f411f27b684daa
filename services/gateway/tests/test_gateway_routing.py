"""The gateway in front of two real model-workers."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard_gateway.keys import hash_key
from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, free_port, metric_value

KEY = "sk-gateway-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
HI = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


def start_gateway(tmp: Path, workers: list[dict], **env: str) -> ServiceProcess:
    port = free_port()
    full = {
        "SWITCHYARD_GATEWAY_PORT": str(port),
        "SWITCHYARD_GATEWAY_STATIC_WORKERS": json.dumps(workers),
        "SWITCHYARD_GATEWAY_API_KEY_HASHES": json.dumps([hash_key(KEY)]),
    }
    full.update({f"SWITCHYARD_GATEWAY_{k.upper()}": v for k, v in env.items()})
    return ServiceProcess(
        "switchyard_gateway", full, tmp / f"gateway-{port}.log", port
    ).wait_ready()


@pytest.fixture(scope="module")
def second_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess(
        "switchyard_model_worker",
        {"SWITCHYARD_MODEL_WORKER_PORT": str(port)},
        tmp_path_factory.mktemp("w2") / "worker.log",
        port,
    ).wait_ready()
    yield proc
    proc.stop()


def served(worker: ServiceProcess) -> float:
    text = httpx.get(f"{worker.url}/metrics").text
    return metric_value(text, "switchyard_worker_requests_total", {"endpoint": "chat_completions"})


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
    doomed = ServiceProcess(
        "switchyard_model_worker",
        {"SWITCHYARD_MODEL_WORKER_PORT": str(doomed_port)},
        tmp_path / "doomed.log",
        doomed_port,
    ).wait_ready()
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
