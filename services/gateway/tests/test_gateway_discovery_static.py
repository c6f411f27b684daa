"""Static discovery: instances listed in settings."""

from __future__ import annotations

from switchyard_gateway.discovery.base import Instance
from switchyard_gateway.discovery.settings import StaticInstanceConfig
from switchyard_gateway.discovery.static import StaticDiscovery


async def test_static_discovery_normalises_entries() -> None:
    discovery = StaticDiscovery(
        [
            StaticInstanceConfig(url="http://w1:8101/", models=["a", "b", "a"]),
            StaticInstanceConfig(url="http://w2:8101", id="worker-2"),
        ]
    )
    await discovery.start()
    first, second = discovery.instances()
    assert first == Instance(
        id="http://w1:8101", url="http://w1:8101", models=frozenset({"a", "b"})
    )
    assert second.id == "worker-2"
    assert second.url == "http://w2:8101"
    assert second.models == frozenset()
    await discovery.stop()
    # The view is stable across calls.
    assert discovery.instances() == (first, second)


def test_static_discovery_empty() -> None:
    assert list(StaticDiscovery([]).instances()) == []


def test_instance_meta_ignored_for_equality_and_hash() -> None:
    a = Instance(id="x", url="http://x", meta={"zone": "a"})
    b = Instance(id="x", url="http://x", meta={"zone": "b"})
    assert a == b
    assert hash(a) == hash(b)
