"""The fake Consul agent follows Consul's HTTP API: checked with py-consul and raw HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import consul
import httpx
import pytest

from tests.fakes.procs import FakeServer
from tests.fakes.target import ReadyTarget
from tests.fakes.waiting import eventually
from tests.support.procs import free_port


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    log = tmp_path_factory.mktemp("consul") / "consul.log"
    server = FakeServer("tests.fakes.consul", free_port(), log, "/v1/status/leader")
    yield server.start()
    server.kill()


@pytest.fixture
def target() -> Iterator[ReadyTarget]:
    t = ReadyTarget()
    yield t
    t.close()


def client(agent: FakeServer) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=agent.port)


def register(agent: FakeServer, target: ReadyTarget, sid: str, name: str = "svc") -> None:
    c = client(agent)
    check = consul.Check.http(f"{target.url}/readyz", "200ms", timeout="1s", deregister="1m")
    assert c.agent.service.register(
        name, service_id=sid, address="127.0.0.1", port=target.port, tags=["model=m1"],
        meta={"backend": "llamacpp"}, check=check,
    )  # fmt: skip


def passing(agent: FakeServer, name: str = "svc") -> list[str]:
    _, nodes = client(agent).health.service(name, passing=True)
    return [n["Service"]["ID"] for n in nodes]


def test_registered_http_check_is_run_and_drives_passing_filter(
    agent: FakeServer, target: ReadyTarget
) -> None:
    register(agent, target, "a1")
    assert eventually(lambda: passing(agent) == ["a1"], timeout=5)
    _, [entry] = client(agent).health.service("svc")
    assert entry["Service"]["Tags"] == ["model=m1"]
    assert entry["Service"]["Meta"] == {"backend": "llamacpp"}
    assert entry["Service"]["Port"] == target.port
    assert entry["Node"]["Address"] == "127.0.0.1"
    check = next(c for c in entry["Checks"] if c["CheckID"] == "service:a1")
    assert check["Status"] == "passing" and check["Type"] == "http"
    assert check["Definition"]["DeregisterCriticalServiceAfter"] == "1m0s"
    assert check["Definition"]["Interval"] == "200ms"
    assert "200 OK" in check["Output"]

    target.status = 503  # the check turns critical: gone from ?passing, still listed without
    assert eventually(lambda: passing(agent) == [], timeout=5)
    _, all_nodes = client(agent).health.service("svc")
    assert [n["Service"]["ID"] for n in all_nodes] == ["a1"]
    target.status = 429  # warning is not passing either
    assert eventually(
        lambda: client(agent).agent.checks()["service:a1"]["Status"] == "warning", timeout=5
    )
    assert passing(agent) == []
    target.status = 200
    assert eventually(lambda: passing(agent) == ["a1"], timeout=5)
    assert client(agent).agent.service.deregister("a1")


def test_blocking_query_waits_for_a_change_or_the_wait_time(
    agent: FakeServer, target: ReadyTarget
) -> None:
    c = client(agent)
    index, _ = c.health.service("blocky", passing=True)
    started = time.monotonic()
    same, _ = c.health.service("blocky", passing=True, index=index, wait="300ms")
    assert 0.3 <= time.monotonic() - started < 3 and same == index

    answers: list[tuple[str, list[dict]]] = []
    waiter = threading.Thread(
        target=lambda: answers.append(c.health.service("blocky", index=index, wait="20s"))
    )
    waiter.start()
    time.sleep(0.2)
    assert not answers  # still blocked
    register(agent, target, "b1", name="blocky")
    waiter.join(timeout=5)
    new_index, nodes = answers[0]
    assert int(new_index) > int(index)
    assert [n["Service"]["ID"] for n in nodes] == ["b1"]
    r = httpx.get(f"{agent.url}/v1/health/service/blocky", params={"passing": ""})
    assert r.headers["X-Consul-Index"] and r.headers["Content-Type"] == "application/json"
    c.agent.service.deregister("b1")


def test_catalog_listing_maintenance_and_deregister(agent: FakeServer, target: ReadyTarget) -> None:
    register(agent, target, "c1", name="cat")
    # Consul decodes bodies case-insensitively: PascalCase works too.
    r = httpx.put(
        f"{agent.url}/v1/agent/service/register",
        json={"Name": "cat", "ID": "c2", "Address": "127.0.0.1", "Port": 1, "Tags": ["x"]},
    )
    assert r.status_code == 200
    c = client(agent)
    _, services = c.catalog.services()
    assert services["consul"] == [] and sorted(services["cat"]) == ["model=m1", "x"]
    _, entries = c.catalog.service("cat")
    assert sorted(e["ServiceID"] for e in entries) == ["c1", "c2"]
    assert {e["ServicePort"] for e in entries} == {target.port, 1}
    _, tagged = c.catalog.service("cat", tag="x")
    assert [e["ServiceID"] for e in tagged] == ["c2"]
    assert c.agent.services()["c2"]["Service"] == "cat"

    assert eventually(lambda: "c1" in passing(agent, "cat"), timeout=5)
    assert c.agent.service.maintenance("c1", "true", reason="draining")
    assert "c1" not in passing(agent, "cat")
    maint = c.agent.checks()["_service_maintenance:c1"]
    assert maint["Status"] == "critical" and maint["Notes"] == "draining"
    assert c.agent.service.maintenance("c1", "false")
    assert eventually(lambda: "c1" in passing(agent, "cat"), timeout=5)

    assert c.agent.service.deregister("c1") and c.agent.service.deregister("c2")
    r = httpx.put(f"{agent.url}/v1/agent/service/deregister/c1")
    assert r.status_code == 404 and "Unknown service ID" in r.text
    _, entries = c.catalog.service("cat")
    assert entries == []
    assert httpx.put(f"{agent.url}/v1/agent/service/register", json={"Port": 1}).status_code == 400


def test_critical_service_is_reaped_after_deregister_critical_service_after(
    agent: FakeServer, target: ReadyTarget
) -> None:
    target.status = 500
    c = client(agent)
    check = consul.Check.http(f"{target.url}/readyz", "100ms", deregister="1s")
    assert c.agent.service.register("reap", service_id="r1", port=target.port, check=check)
    assert "r1" in c.agent.services()
    assert eventually(lambda: "r1" not in c.agent.services(), timeout=5)
