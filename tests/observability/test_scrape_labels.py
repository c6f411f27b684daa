"""The labels the dashboard test's Prometheus gives each target are the ones the chart's
ServiceMonitors give them in a cluster: Prometheus Operator's target labels, plus model and
pool on the model-workers, relabelled from the pod labels the worker pods carry."""

from __future__ import annotations

from tests.chart.render import render
from tests.observability.platform import scrape_targets

# Target labels Prometheus Operator sets for a ServiceMonitor endpoint.
OPERATOR_LABELS = {"namespace", "pod", "service", "job", "instance", "container", "endpoint"}


def test_the_worker_service_monitor_adds_model_and_pool_from_pod_labels() -> None:
    rendered = render("observability-all")
    monitors = {m["metadata"]["name"]: m for m in rendered.of_kind("ServiceMonitor")}
    assert {n.rsplit("-", 1)[-1] for n in monitors} >= {"gateway", "session", "webhook"}
    worker = next(m for n, m in monitors.items() if n.endswith("model-worker"))
    relabel = {r["targetLabel"]: r["sourceLabels"] for r in worker["spec"]["endpoints"][0]
               ["relabelings"]}  # fmt: skip
    assert relabel == {"model": ["__meta_kubernetes_pod_label_switchyard_io_model"],
                       "pool": ["__meta_kubernetes_pod_label_switchyard_io_pool"]}  # fmt: skip
    pods = [t for o, t in rendered.pod_templates() if o["metadata"]["name"].find("model-worker") > 0
            and o["kind"] == "Deployment"]  # fmt: skip
    assert pods
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert labels["switchyard.io/model"] and labels["switchyard.io/pool"]


def test_the_test_targets_carry_only_labels_a_cluster_gives() -> None:
    urls = dict.fromkeys(("gateway", "chat", "embed", "session", "webhook"), "http://x")
    for t in scrape_targets(urls):
        extra = set(t.labels) - OPERATOR_LABELS
        assert extra == ({"model", "pool"} if t.job == "model-worker" else set()), t
