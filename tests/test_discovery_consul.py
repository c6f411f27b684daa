"""Consul end to end: real model-worker and gateway processes, Consul in between.

Runs against the fake agent by default; against a real agent too (``live_consul``) when
``CONSUL_HTTP_ADDR`` is set. The gateway reaches Consul through a TCP proxy, so "Consul goes
away" can be played against either.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic_settings import BaseSettings

from switchyard_gateway.keys import hash_key
from tests.fakes.procs import FakeServer
from tests.fakes.tcpproxy import TcpProxy
from tests.fakes.waiting import eventually
from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, free_port, metric_value

KEY = "sk-consul-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
HI = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


class LiveConsul(BaseSettings):
    """A real agent for the ``live_consul`` run (Consul's own variable)."""

    consul_http_addr: str | None = None


LIVE = LiveConsul().consul_http_addr
BACKENDS = [
    pytest.param("fake", id="fake"),
    pytest.param(
        "live",
        id="live",
        marks=[
            pytest.mark.live_consul,
            pytest.mark.skipif(not LIVE, reason="CONSUL_HTTP_ADDR is not set"),
        ],
    ),
]


@dataclass
class Stack:
    agent_url: str
    proxy: TcpProxy
    worker: ServiceProcess
    worker_id: str
    gateway: ServiceProcess

    def agent(self, method: str, path: str, **kw: object) -> httpx.Response:
        return httpx.request(method, f"{self.agent_url}{path}", timeout=5, **kw)  # type: ignore[arg-type]

    def registered(self) -> bool:
        return self.worker_id in self.agent("GET", "/v1/agent/services").json()

    def gateway_models(self) -> list[str]:
        r = httpx.get(f"{self.gateway.url}/v1/models", headers=AUTH, timeout=5)
        return [m["id"] for m in r.json()["data"]]

    def gateway_metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return metric_value(httpx.get(f"{self.gateway.url}/metrics").text, name, labels)

    def chat(self) -> int:
        r = httpx.post(f"{self.gateway.url}/v1/chat/completions", json=HI, headers=AUTH, timeout=60)
        return r.status_code


@pytest.fixture(scope="module", params=BACKENDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("consul-e2e")
    fake: FakeServer | None = None
    if request.param == "fake":
        fake = FakeServer(
            "tests.fakes.consul", free_port(), tmp / "consul.log", "/v1/status/leader"
        )
        agent_url = fake.start().url
    else:
        agent_url = LIVE if "//" in str(LIVE) else f"http://{LIVE}"
    target = httpx.URL(agent_url)
    proxy = TcpProxy(target.host, target.port or 8500, free_port()).restore()
    worker_id = f"model-worker-{uuid.uuid4().hex[:8]}"
    wport = free_port()
    worker = ServiceProcess(
        "switchyard_model_worker",
        {
            "SWITCHYARD_MODEL_WORKER_PORT": str(wport),
            "SWITCHYARD_MODEL_WORKER_INSTANCE_ID": worker_id,
            "SWITCHYARD_MODEL_WORKER_CONSUL__ADDRESS": agent_url,
            # A real agent runs checks at most once a second.
            "SWITCHYARD_MODEL_WORKER_REGISTRATION__CHECK_INTERVAL_SECONDS": "1",
            "SWITCHYARD_MODEL_WORKER_REGISTRATION__LEAVE_DELAY_SECONDS": "1",
        },
        tmp / "worker.log",
        wport,
    ).wait_ready()
    gport = free_port()
    gateway = ServiceProcess(
        "switchyard_gateway",
        {
            "SWITCHYARD_GATEWAY_PORT": str(gport),
            "SWITCHYARD_GATEWAY_API_KEY_HASHES": json.dumps([hash_key(KEY)]),
            "SWITCHYARD_GATEWAY_DISCOVERY": "consul",
            "SWITCHYARD_GATEWAY_CONSUL__ADDRESS": proxy.url,
            "SWITCHYARD_GATEWAY_CONSUL_WATCH__RETRY_MAX_SECONDS": "0.3",
            "SWITCHYARD_GATEWAY_PROBE_INTERVAL_SECONDS": "0.5",
            "SWITCHYARD_GATEWAY_REGISTRATION__ENABLED": "false",
        },
        tmp / "gateway.log",
        gport,
    ).wait_ready()
    s = Stack(agent_url, proxy, worker, worker_id, gateway)
    try:
        yield s
    finally:
        gateway.stop()
        worker.stop()
        if s.registered():
            s.agent("PUT", f"/v1/agent/service/deregister/{worker_id}")
        proxy.cut()
        if fake is not None:
            fake.kill()


def test_worker_registers_and_the_gateway_routes_to_it(stack: Stack) -> None:
    r = stack.agent("GET", "/v1/health/service/model-worker", params={"passing": "1"})
    [entry] = [e for e in r.json() if e["Service"]["ID"] == stack.worker_id] or [None]
    assert entry is not None, r.text
    assert f"model={MODEL}" in entry["Service"]["Tags"]
    meta = entry["Service"]["Meta"]
    assert meta["backend"] == "llamacpp" and meta["models"] == MODEL
    assert int(meta["max_concurrency"]) >= 1 and meta["gpu_count"] == "0"
    assert entry["Service"]["Port"] == stack.worker.port
    eventually(lambda: MODEL in stack.gateway_models(), timeout=10)
    assert stack.chat() == 200
    assert stack.gateway_metric("switchyard_discovery_consul_up") == 1


def test_critical_check_stops_routing_within_a_second(stack: Stack) -> None:
    path = f"/v1/agent/service/maintenance/{stack.worker_id}"
    r = stack.agent("PUT", path, params={"enable": "true", "reason": "test"})
    assert r.status_code == 200
    critical_at = time.monotonic()
    try:
        eventually(lambda: MODEL not in stack.gateway_models(), timeout=5, interval=0.02)
        assert time.monotonic() - critical_at < 1.0
        assert stack.chat() != 200
    finally:
        stack.agent("PUT", path, params={"enable": "false"})
    eventually(lambda: MODEL in stack.gateway_models(), timeout=10)
    assert stack.chat() == 200


def test_consul_unreachable_keeps_the_last_view(stack: Stack) -> None:
    stack.proxy.cut()
    try:
        eventually(lambda: stack.gateway_metric("switchyard_discovery_consul_up") == 0, timeout=10)
        assert stack.chat() == 200  # still routed to the last known instance
        assert MODEL in stack.gateway_models()
        eventually(
            lambda: (
                stack.gateway_metric(
                    "switchyard_discovery_staleness_seconds", {"backend": "consul"}
                )
                > 0.5
            ),
            timeout=5,
        )
        logs = stack.gateway.log_path.read_text()
        assert "consul unreachable; keeping the last known 1 instances" in logs

        # While the gateway cannot see Consul, the worker goes into maintenance there...
        path = f"/v1/agent/service/maintenance/{stack.worker_id}"
        stack.agent("PUT", path, params={"enable": "true"})
        assert stack.chat() == 200  # ...which the gateway cannot know yet.
    finally:
        stack.proxy.restore()
    # Consul is back: the view refreshes.
    try:
        eventually(lambda: MODEL not in stack.gateway_models(), timeout=10)
        assert stack.gateway_metric("switchyard_discovery_consul_up") == 1
        assert (
            stack.gateway_metric("switchyard_discovery_staleness_seconds", {"backend": "consul"})
            == 0
        )
    finally:
        stack.agent("PUT", path, params={"enable": "false"})
    eventually(lambda: MODEL in stack.gateway_models(), timeout=10)


def test_worker_deregisters_on_shutdown(stack: Stack) -> None:
    assert stack.registered()
    stack.worker.stop()
    assert not stack.registered()
    assert "deregistered from consul" in stack.worker.logs()
    eventually(lambda: MODEL not in stack.gateway_models(), timeout=5)
