"""ConsulDiscovery against the fake agent: blocking-query watch, last good view, recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import consul
import pytest
from prometheus_client import CollectorRegistry

from switchyard_common.settings import ConsulSettings
from switchyard_gateway.discovery.consul import ConsulDiscovery, models_of
from switchyard_gateway.discovery.settings import ConsulWatchSettings
from tests.fakes.procs import FakeServer
from tests.fakes.target import ReadyTarget
from tests.fakes.waiting import aeventually
from tests.support.procs import free_port


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[FakeServer]:
    server = FakeServer("tests.fakes.consul", free_port(), tmp_path / "c.log", "/v1/status/leader")
    yield server.start()
    server.kill()


@pytest.fixture
def target() -> Iterator[ReadyTarget]:
    t = ReadyTarget()
    yield t
    t.close()


def register(agent: FakeServer, target: ReadyTarget, sid: str, *tags: str) -> None:
    c = consul.Consul(host="127.0.0.1", port=agent.port)
    check = consul.Check.http(f"{target.url}/readyz", "100ms", timeout="1s")
    meta = {"models": "alias-a, alias-b", "backend": "llamacpp"}
    c.agent.service.register(
        "model-worker", service_id=sid, address="127.0.0.1", port=target.port,
        tags=list(tags), meta=meta, check=check,
    )  # fmt: skip


def watcher(agent: FakeServer, registry: CollectorRegistry) -> ConsulDiscovery:
    watch = ConsulWatchSettings(wait_seconds=30, retry_max_seconds=0.3, initial_wait_seconds=2)
    return ConsulDiscovery(ConsulSettings(address=agent.url), "model-worker", watch, registry)


def ids(d: ConsulDiscovery) -> set[str]:
    return {i.id for i in d.instances()}


def test_models_come_from_tags_and_meta() -> None:
    assert models_of(("model=a", "other", "model="), {"models": "b, c,"}) == {"a", "b", "c"}


async def test_watch_follows_registration_and_health_within_a_second(
    agent: FakeServer, target: ReadyTarget
) -> None:
    registry = CollectorRegistry()
    d = watcher(agent, registry)
    await d.start()
    try:
        assert d.up and d.instances() == ()
        await asyncio.to_thread(register, agent, target, "w1", "model=m1")
        await aeventually(lambda: ids(d) == {"w1"}, timeout=5)
        [inst] = d.instances()
        assert inst.url == f"http://127.0.0.1:{target.port}"
        assert inst.models == {"m1", "alias-a", "alias-b"}
        assert inst.meta["backend"] == "llamacpp"
        assert [i.id for i in d.instances() if "m1" in i.models] == ["w1"]

        # The check turns critical: gone from the view within a second of Consul seeing it.
        c = consul.Consul(host="127.0.0.1", port=agent.port)
        target.status = 503

        def critical() -> bool:
            return c.agent.checks()["service:w1"]["Status"] == "critical"

        await aeventually(lambda: critical(), timeout=5)
        seen = time.monotonic()
        await aeventually(lambda: ids(d) == set(), timeout=5)
        assert time.monotonic() - seen < 1.0
        target.status = 200
        await aeventually(lambda: ids(d) == {"w1"}, timeout=5)
        labels = {"backend": "consul"}
        assert registry.get_sample_value("switchyard_discovery_instances", labels) == 1
    finally:
        await d.stop()


async def test_consul_down_keeps_last_view_then_fresh_agent_refreshes_it(
    agent: FakeServer, target: ReadyTarget
) -> None:
    registry = CollectorRegistry()
    await asyncio.to_thread(register, agent, target, "w1", "model=m1")
    d = watcher(agent, registry)
    await d.start()
    try:
        await aeventually(lambda: ids(d) == {"w1"}, timeout=5)
        assert registry.get_sample_value("switchyard_discovery_consul_up") == 1
        agent.kill()
        await aeventually(lambda: not d.up, timeout=5)
        assert ids(d) == {"w1"}  # the last known instances stay
        assert registry.get_sample_value("switchyard_discovery_consul_up") == 0
        await aeventually(
            lambda: (
                (
                    registry.get_sample_value(
                        "switchyard_discovery_staleness_seconds", {"backend": "consul"}
                    )
                    or 0
                )
                > 0.3
            ),
            timeout=5,
        )
        assert (
            registry.get_sample_value("switchyard_discovery_errors_total", {"backend": "consul"})
            or 0
        ) >= 1

        # A fresh agent (empty, its index restarting low) comes back with another instance:
        # the watch must reset its index instead of blocking on the old one.
        agent.start()
        await asyncio.to_thread(register, agent, target, "w2", "model=m2")
        await aeventually(lambda: d.up and ids(d) == {"w2"}, timeout=5)
        assert (
            registry.get_sample_value(
                "switchyard_discovery_staleness_seconds", {"backend": "consul"}
            )
            == 0
        )
    finally:
        await d.stop()


async def test_start_with_consul_unreachable_does_not_block(tmp_path: Path) -> None:
    server = FakeServer("tests.fakes.consul", free_port(), tmp_path / "c.log", "/v1/status/leader")
    d = watcher(server, CollectorRegistry())
    started = time.monotonic()
    await d.start()
    try:
        assert time.monotonic() - started < 3
        assert not d.up and d.instances() == ()
    finally:
        await d.stop()
