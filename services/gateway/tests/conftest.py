"""Gateway test helpers: gateway processes in front of real model-workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard_gateway.keys import hash_key
from tests.support.procs import ServiceProcess, free_port, metric_value

from .clock import ManualClock

KEY = "sk-gateway-test"
ADMIN_KEY = "sk-gateway-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def start_gateway(tmp: Path, workers: list[dict], **env: str) -> ServiceProcess:
    port = free_port()
    full = {
        "SWITCHYARD_GATEWAY_PORT": str(port),
        "SWITCHYARD_GATEWAY_STATIC_WORKERS": json.dumps(workers),
        "SWITCHYARD_GATEWAY_API_KEY_HASHES": json.dumps([hash_key(KEY)]),
        "SWITCHYARD_GATEWAY_ADMIN_KEY_HASHES": json.dumps([hash_key(ADMIN_KEY)]),
    }
    full.update({f"SWITCHYARD_GATEWAY_{k.upper()}": v for k, v in env.items()})
    proc = ServiceProcess("switchyard_gateway", full, tmp / f"gateway-{port}.log", port)
    return proc.wait_ready()


def start_worker(tmp: Path, port: int | None = None, **env: str) -> ServiceProcess:
    port = port or free_port()
    full = {"SWITCHYARD_MODEL_WORKER_PORT": str(port)}
    full.update({f"SWITCHYARD_MODEL_WORKER_{k.upper()}": v for k, v in env.items()})
    return ServiceProcess("switchyard_model_worker", full, tmp / f"worker-{port}.log", port)


def served(worker: ServiceProcess) -> float:
    text = httpx.get(f"{worker.url}/metrics").text
    labels = {"endpoint": "chat_completions", "status": "200"}
    return metric_value(text, "switchyard_worker_requests_total", labels)


@pytest.fixture(scope="session")
def second_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    proc = start_worker(tmp_path_factory.mktemp("w2")).wait_ready()
    yield proc
    proc.stop()


@pytest.fixture
def limits_clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The clock of the ``limits`` library's in-memory windows (it reads ``time.time()``
    through its modules' ``time``): one second into a minute, far from its end."""
    import limits.aio.storage.memory
    import limits.aio.strategies

    clock = ManualClock(1_800_000_001.0)  # a whole minute plus one second
    monkeypatch.setattr(limits.aio.storage.memory, "time", clock)
    monkeypatch.setattr(limits.aio.strategies, "time", clock)
    return clock
