"""Registration of a real service process in the fake Consul agent, and graceful leave."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard_common.registration import Advertisement, advertise_address, service_definition
from switchyard_common.settings import RegistrationSettings, ServiceSettings
from tests.fakes.procs import FakeServer
from tests.fakes.waiting import eventually
from tests.support.procs import ServiceProcess, free_port


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[FakeServer]:
    server = FakeServer("tests.fakes.consul", free_port(), tmp_path / "c.log", "/v1/status/leader")
    yield server
    server.kill()


def start_session(tmp: Path, consul_url: str, **extra: str) -> ServiceProcess:
    port = free_port()
    env = {
        "SWITCHYARD_SESSION_PORT": str(port),
        "SWITCHYARD_SESSION_DATA_DIR": str(tmp / f"data-{port}"),
        "SWITCHYARD_SESSION_AUTO_MIGRATE": "true",  # ready only once its schema is current
        "SWITCHYARD_SESSION_INSTANCE_ID": "session-0",
        "SWITCHYARD_SESSION_CONSUL__ADDRESS": consul_url,
        "SWITCHYARD_SESSION_REGISTRATION__CHECK_INTERVAL_SECONDS": "0.2",
        "SWITCHYARD_SESSION_REGISTRATION__RETRY_MAX_SECONDS": "0.5",
        "SWITCHYARD_SESSION_REGISTRATION__RESYNC_SECONDS": "0.5",
        "SWITCHYARD_SESSION_REGISTRATION__LEAVE_DELAY_SECONDS": "1.5",
        "SWITCHYARD_SESSION_REGISTRATION__TAGS": json.dumps(["blue"]),
        "SWITCHYARD_SESSION_REGISTRATION__META": json.dumps({"zone": "a"}),
        **extra,
    }
    return ServiceProcess("switchyard_session", env, tmp / f"session-{port}.log", port)


def agent_services(agent: FakeServer) -> dict:
    try:
        return httpx.get(f"{agent.url}/v1/agent/services", timeout=2).json()
    except httpx.HTTPError:
        return {}


def passing(agent: FakeServer, name: str) -> list[dict]:
    r = httpx.get(f"{agent.url}/v1/health/service/{name}", params={"passing": "1"}, timeout=2)
    return r.json()


def test_definition_has_address_check_and_meta() -> None:
    settings = ServiceSettings(
        service_name="model-worker",
        host="0.0.0.0",
        port=8101,
        instance_id="model-worker-5d8f-q2m4x",
        registration=RegistrationSettings(
            advertise_address="10.244.1.17", gpu_type="nvidia-l4", gpu_count=1,
            check_interval_seconds=2, check_timeout_seconds=0.5,
            deregister_critical_after_seconds=90,
        ),
    )  # fmt: skip
    ad = Advertisement(tags=["model=m1"], meta={"backend": "llamacpp"})
    d = service_definition(settings, ad)
    assert d["id"] == "model-worker-5d8f-q2m4x" and d["name"] == "model-worker"
    assert (d["address"], d["port"], d["tags"]) == ("10.244.1.17", 8101, ["model=m1"])
    assert d["meta"] == {"version": "0.1.0", "backend": "llamacpp"}
    assert d["check"] == {
        "Name": "readyz",
        "HTTP": "http://10.244.1.17:8101/readyz",
        "Interval": "2s",
        "Timeout": "500ms",
        "DeregisterCriticalServiceAfter": "90s",
    }
    # Bound to one address and no advertise address: that address.
    assert advertise_address(ServiceSettings(host="127.0.0.2")) == "127.0.0.2"


def test_registers_once_consul_answers_and_serves_health_meanwhile(
    tmp_path: Path, agent: FakeServer
) -> None:
    svc = start_session(tmp_path, agent.url)  # Consul is not up yet
    try:
        svc.wait_ready(timeout=60)  # health and readiness do not wait for Consul
        assert httpx.get(f"{svc.url}/healthz").status_code == 200
        agent.start()
        [entry] = eventually(lambda: passing(agent, "session"), timeout=15)
        service = entry["Service"]
        assert service["ID"] == "session-0" and service["Port"] == svc.port
        assert service["Address"] == "127.0.0.1"
        assert service["Tags"] == ["blue"]
        assert service["Meta"] == {"version": "0.1.0", "zone": "a"}
        check = next(c for c in entry["Checks"] if c["ServiceID"] == "session-0")
        assert check["Definition"]["HTTP"] == f"{svc.url}/readyz"
        assert check["Definition"]["Interval"] == "200ms"
        metrics = httpx.get(f"{svc.url}/metrics").text
        assert "switchyard_consul_registered 1.0" in metrics

        # The agent restarts and forgets us: the resync registers us again.
        agent.kill()
        agent.start()
        assert eventually(lambda: "session-0" in agent_services(agent), timeout=10)
    finally:
        svc.stop()


def test_sigterm_deregisters_before_the_server_stops_accepting(
    tmp_path: Path, agent: FakeServer
) -> None:
    agent.start()
    svc = start_session(tmp_path, agent.url).wait_ready(timeout=60)
    eventually(lambda: passing(agent, "session"), timeout=10)
    svc.proc.send_signal(signal.SIGTERM)
    eventually(lambda: "session-0" not in agent_services(agent), timeout=10)
    # Deregistered, and still answering (not ready: draining) while watchers catch up.
    r = httpx.get(f"{svc.url}/readyz", timeout=2)
    assert r.status_code == 503 and r.json()["checks"]["accepting"] is False
    assert svc.proc.poll() is None
    deadline = time.monotonic() + 20
    while svc.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert svc.proc.poll() is not None
    assert "deregistered from consul" in svc.logs()
    svc.stop()
