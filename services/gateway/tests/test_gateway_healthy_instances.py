"""The healthy-instances gauge: read from the pool at scrape time; a model seen once stays
listed at 0 when nothing healthy serves it any more (what the NoHealthyWorker alert needs)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from switchyard_gateway.metrics import HealthyInstances
from tests.support.procs import metric_value


def test_counts_serving_instances_and_keeps_models_that_lost_all() -> None:
    healthy = {"chat": ["w1", "w2"], "embed": ["e1"]}
    registry = CollectorRegistry()
    registry.register(
        HealthyInstances(lambda: sorted(m for m, s in healthy.items() if s), lambda m: healthy[m])
    )
    text = generate_latest(registry).decode()
    assert metric_value(text, "switchyard_gateway_healthy_instances", {"model": "chat"}) == 2
    assert metric_value(text, "switchyard_gateway_healthy_instances", {"model": "embed"}) == 1
    healthy["embed"] = []
    text = generate_latest(registry).decode()
    assert metric_value(text, "switchyard_gateway_healthy_instances", {"model": "embed"}) == 0
