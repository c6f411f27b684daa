"""Kubernetes discovery end to end: the real gateway watching a fake Kubernetes API
(EndpointSlices in the recorded discovery.k8s.io/v1 shape), routing to a real model-worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from switchyard_gateway.keys import hash_key
from tests.fakes.procs import ROOT, FakeServer
from tests.fakes.waiting import eventually
from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, free_port, metric_value

KEY = "sk-k8s-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
HI = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
NS = "switchyard"
RECORDED = ROOT / "tests" / "fakes" / "data" / "endpointslice-model-worker.json"


def slice_for(worker: ServiceProcess, ready: bool = True) -> dict[str, Any]:
    """The recorded slice, pointing its first endpoint at the real worker."""
    obj = json.loads(RECORDED.read_text())
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp"):
        obj["metadata"].pop(key)
    obj["endpoints"] = obj["endpoints"][:1]
    obj["endpoints"][0]["addresses"] = ["127.0.0.1"]
    obj["endpoints"][0]["conditions"]["ready"] = ready
    obj["ports"] = [{"name": "http", "protocol": "TCP", "port": worker.port}]
    return obj


@dataclass
class Stack:
    api_server: FakeServer
    gateway: ServiceProcess

    def api(self) -> Any:
        cfg = kubernetes.client.Configuration()
        cfg.host = self.api_server.url
        return kubernetes.client.DiscoveryV1Api(kubernetes.client.ApiClient(cfg))

    def models(self) -> list[str]:
        r = httpx.get(f"{self.gateway.url}/v1/models", headers=AUTH, timeout=5)
        return [m["id"] for m in r.json()["data"]]

    def chat(self) -> int:
        r = httpx.post(f"{self.gateway.url}/v1/chat/completions", json=HI, headers=AUTH, timeout=60)
        return r.status_code

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return metric_value(httpx.get(f"{self.gateway.url}/metrics").text, name, labels)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    api_server = FakeServer("tests.fakes.kubernetes", free_port(), tmp_path / "k8s.log", "/version")
    api_server.start()
    port = free_port()
    settings = {
        "namespace": NS,
        "api_server": api_server.url,
        "retry_max_seconds": 0.3,
        "watch_timeout_seconds": 10,
    }
    gateway = ServiceProcess(
        "switchyard_gateway",
        {
            "SWITCHYARD_GATEWAY_PORT": str(port),
            "SWITCHYARD_GATEWAY_API_KEY_HASHES": json.dumps([hash_key(KEY)]),
            "SWITCHYARD_GATEWAY_DISCOVERY": "kubernetes",
            "SWITCHYARD_GATEWAY_KUBERNETES": json.dumps(settings),
            "SWITCHYARD_GATEWAY_PROBE_INTERVAL_SECONDS": "0.5",
        },
        tmp_path / "gateway.log",
        port,
    ).wait_ready()
    yield Stack(api_server, gateway)
    gateway.stop()
    api_server.kill()


def test_endpointslice_lifecycle_drives_routing(stack: Stack, worker: ServiceProcess) -> None:
    api = stack.api()
    assert stack.models() == []
    # Added: the gateway routes to the ready endpoint.
    created = api.create_namespaced_endpoint_slice(NS, slice_for(worker))
    name = created.metadata.name
    eventually(lambda: MODEL in stack.models(), timeout=10)
    assert stack.chat() == 200
    assert stack.metric("switchyard_discovery_kubernetes_up") == 1

    # The endpoint turns not-ready: removed.
    api.replace_namespaced_endpoint_slice(name, NS, slice_for(worker, ready=False))
    eventually(lambda: MODEL not in stack.models(), timeout=5)
    assert stack.chat() != 200
    api.replace_namespaced_endpoint_slice(name, NS, slice_for(worker, ready=True))
    eventually(lambda: MODEL in stack.models(), timeout=5)

    # Deleted: removed.
    api.delete_namespaced_endpoint_slice(name, NS)
    eventually(lambda: MODEL not in stack.models(), timeout=5)
    api.create_namespaced_endpoint_slice(NS, slice_for(worker))
    eventually(lambda: MODEL in stack.models(), timeout=5)

    # The API server goes away: the gateway keeps routing to what it last saw.
    stack.api_server.kill()
    eventually(lambda: stack.metric("switchyard_discovery_kubernetes_up") == 0, timeout=10)
    assert stack.chat() == 200
    logs = stack.gateway.log_path.read_text()
    assert "kubernetes unreachable; keeping the last known 1 instances" in logs

    # It comes back (empty, as after losing its state): the view refreshes to that.
    stack.api_server.start()
    eventually(lambda: stack.metric("switchyard_discovery_kubernetes_up") == 1, timeout=10)
    eventually(lambda: MODEL not in stack.models(), timeout=5)
    stack.api().create_namespaced_endpoint_slice(NS, slice_for(worker))
    eventually(lambda: MODEL in stack.models(), timeout=5)
    assert stack.chat() == 200
