"""KubernetesDiscovery against a fake Kubernetes API server, driven by the real client."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from prometheus_client import CollectorRegistry

from switchyard_gateway.discovery.kubernetes import KubernetesDiscovery, slice_instances
from switchyard_gateway.discovery.settings import KubernetesDiscoverySettings
from tests.fakes.procs import ROOT, FakeServer
from tests.fakes.waiting import aeventually
from tests.support.procs import free_port

RECORDED = ROOT / "tests" / "fakes" / "data" / "endpointslice-model-worker.json"
NS = "switchyard"
READY_POD = "model-worker-5d8f7c9b6d-q2m4x"
UNREADY_POD = "model-worker-5d8f7c9b6d-h7k9z"


def recorded() -> dict[str, Any]:
    obj = json.loads(RECORDED.read_text())
    # What a client sends on create: no server-set fields.
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp"):
        obj["metadata"].pop(key)
    return obj


@pytest.fixture
def k8s(tmp_path: Path) -> Iterator[FakeServer]:
    server = FakeServer("tests.fakes.kubernetes", free_port(), tmp_path / "k8s.log", "/version")
    yield server.start()
    server.kill()


def api(server: FakeServer) -> Any:
    cfg = kubernetes.client.Configuration()
    cfg.host = server.url
    return kubernetes.client.DiscoveryV1Api(kubernetes.client.ApiClient(cfg))


def discovery(server: FakeServer, registry: CollectorRegistry) -> KubernetesDiscovery:
    settings = KubernetesDiscoverySettings(
        namespace=NS,
        api_server=server.url,
        models=["extra-model"],
        watch_timeout_seconds=5,
        retry_max_seconds=0.5,
        initial_wait_seconds=5,
    )
    return KubernetesDiscovery("model-worker", settings, registry)


def ids(d: KubernetesDiscovery) -> set[str]:
    return {i.id for i in d.instances()}


def test_recorded_slice_maps_ready_endpoints_to_instances() -> None:
    client = kubernetes.client.ApiClient()
    obj = client.deserialize(RECORDED.read_text(), "V1EndpointSlice", "application/json")
    [inst] = slice_instances([obj], "http", "http", frozenset({"extra"}))
    assert inst.id == READY_POD
    assert inst.url == "http://10.244.1.17:8101"  # the "http" port, not the first one
    assert inst.models == {"extra", "smollm2-135m-instruct"}
    assert inst.meta["node"] == "gpu-node-a"
    # No port name configured: the first port.
    [first] = slice_instances([obj], None, "http", frozenset())
    assert first.url.endswith(":9100")


async def test_added_not_ready_deleted_unreachable_and_recovery(k8s: FakeServer) -> None:
    registry = CollectorRegistry()
    client = api(k8s)
    d = discovery(k8s, registry)
    await d.start()
    try:
        assert d.up and ids(d) == set()

        # Added: only the ready endpoint becomes an instance.
        created = client.create_namespaced_endpoint_slice(NS, recorded())
        assert created.metadata.resource_version
        await aeventually(lambda: ids(d) == {READY_POD}, timeout=5)
        assert d.instances()[0].models == {"extra-model", "smollm2-135m-instruct"}

        # A slice of another Service is ignored.
        other = recorded()
        other["metadata"]["name"] = "session-abc"
        other["metadata"]["labels"]["kubernetes.io/service-name"] = "session"
        client.create_namespaced_endpoint_slice(NS, other)

        # The second endpoint turns ready, then the first turns not-ready.
        body = recorded()
        body["endpoints"][1]["conditions"]["ready"] = True
        client.replace_namespaced_endpoint_slice(body["metadata"]["name"], NS, body)
        await aeventually(lambda: ids(d) == {READY_POD, UNREADY_POD}, timeout=5)
        body = copy.deepcopy(body)
        body["endpoints"][0]["conditions"] = {"ready": False, "serving": True, "terminating": True}
        client.replace_namespaced_endpoint_slice(body["metadata"]["name"], NS, body)
        await aeventually(lambda: ids(d) == {UNREADY_POD}, timeout=5)

        # Deleted: no instances.
        client.delete_namespaced_endpoint_slice(body["metadata"]["name"], NS)
        await aeventually(lambda: ids(d) == set(), timeout=5)

        # Put it back, then the API goes away: the last view stays, metrics say so.
        client.create_namespaced_endpoint_slice(NS, recorded())
        await aeventually(lambda: ids(d) == {READY_POD}, timeout=5)
        k8s.kill()
        await aeventually(lambda: not d.up, timeout=10)
        assert ids(d) == {READY_POD}
        assert registry.get_sample_value("switchyard_discovery_kubernetes_up") == 0
        started = time.monotonic()
        await aeventually(
            lambda: (
                (
                    registry.get_sample_value(
                        "switchyard_discovery_staleness_seconds", {"backend": "kubernetes"}
                    )
                    or 0
                )
                > 0.2
            ),
            timeout=5,
        )
        assert time.monotonic() - started < 5

        # Recovery: a fresh API server (empty) is the new truth once it answers.
        k8s.start()
        fresh = recorded()
        fresh["endpoints"][0]["conditions"]["ready"] = False
        fresh["endpoints"][1]["conditions"]["ready"] = True
        api(k8s).create_namespaced_endpoint_slice(NS, fresh)
        await aeventually(lambda: d.up and ids(d) == {UNREADY_POD}, timeout=10)
        assert registry.get_sample_value("switchyard_discovery_kubernetes_up") == 1
        assert (
            registry.get_sample_value(
                "switchyard_discovery_staleness_seconds", {"backend": "kubernetes"}
            )
            == 0
        )
    finally:
        await d.stop()


async def test_unreachable_api_at_start_does_not_block_and_recovers(tmp_path: Path) -> None:
    server = FakeServer("tests.fakes.kubernetes", free_port(), tmp_path / "k8s.log", "/version")
    registry = CollectorRegistry()
    d = discovery(server, registry)
    started = time.monotonic()
    await d.start()
    try:
        assert time.monotonic() - started < 5
        assert not d.up and d.instances() == ()
        server.start()
        api(server).create_namespaced_endpoint_slice(NS, recorded())
        await aeventually(lambda: ids(d) == {READY_POD}, timeout=10)
    finally:
        await d.stop()
        server.kill()
