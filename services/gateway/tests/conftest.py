"""Gateway test helpers: gateway processes in front of real model-workers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard_gateway.keys import hash_key
from tests.support.procs import ServiceProcess, free_port, metric_value

KEY = "sk-gateway-test"
ADMIN_KEY = "sk-gateway-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def clear_of_minute_boundary(margin: float = 15.0) -> None:
    """Wait, if need be, until a new minute has begun, so that ``margin`` seconds of test
    stay inside one per-minute window. The sliding-window counter weighs the previous
    minute's hits by how much of it still overlaps (rounded down), so one request more
    than the limit gets through just after a minute boundary: exact counts need to stay
    clear of it."""
    into = time.time() % 60
    if into > 60 - margin:
        time.sleep(60 - into + 0.05)


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
