"""The chart lints, renders and validates against the real Kubernetes schemas, per scenario."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from tests.chart.conftest import rendered_scenario
from tests.chart.render import CHART, SCENARIOS, Rendered, scenario_values

# The oldest Kubernetes minor the chart supports and the newest kubernetes-validate ships.
KUBE_VERSIONS = ["1.32.0", kubernetes_validate.latest_version()]

# Custom resources have no schema in kubernetes-validate: each gets a structural check instead.
CRD_CHECKS: dict[tuple[str, str], list[str]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector.matchLabels", "spec.endpoints"],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["spec.groups"],
    ("keda.sh/v1alpha1", "ScaledObject"): ["spec.scaleTargetRef.name", "spec.triggers"],
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): ["spec.parentRefs", "spec.rules"],
}


def _at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[part]
    return obj


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_strict(scenario: str, kube_version: str) -> None:
    report = helm.lint(
        str(CHART), scenario_values(scenario) or None, strict=True, kube_version=f"v{kube_version}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert problems == []
    assert report["total_charts_linted"] == 1


def test_helm_lint_reports_bad_values() -> None:
    """Lint really runs the schema: the check above could fail."""
    report = helm.lint(str(CHART), {"gateway": {"replicas": "two"}}, strict=True)
    assert any(m["severity"] == 3 for m in report["messages"]) or report["errors"]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_objects_validate_strictly(rendered: Rendered, kube_version: str) -> None:
    crds = 0
    for obj in rendered.objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_CHECKS:
            crds += 1
            assert obj["metadata"]["name"]
            for path in CRD_CHECKS[key]:
                assert _at(obj, path), f"{obj['kind']} {obj['metadata']['name']}: no {path}"
            continue
        kubernetes_validate.validate(obj, kube_version, strict=True)
    expected = sum(1 for o in rendered.objects if (o["apiVersion"], o["kind"]) in CRD_CHECKS)
    assert crds == expected


def test_strict_validation_catches_a_misspelled_field() -> None:
    deployment = rendered_scenario("default").of_kind("Deployment")[0]
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=True)


def test_object_names_are_unique_and_dns_labels(rendered: Rendered) -> None:
    seen = set()
    for obj in rendered.objects:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in seen, key
        seen.add(key)
        assert len(obj["metadata"]["name"]) <= 63


def test_every_scenario_renders_what_it_switches_on() -> None:
    kinds = {s: {o["kind"] for o in rendered_scenario(s).objects} for s in SCENARIOS}
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds["observability-all"]
    assert "ScaledObject" in kinds["keda"]
    assert "HTTPRoute" in kinds["multi-model"]
    assert "Ingress" in kinds["consul-off"]
    assert "Role" not in kinds["gpu-pools"]  # Consul on: no Kubernetes discovery RBAC
    assert "Role" in kinds["consul-off"]
    assert "Secret" not in kinds["external-secrets"]
    dashboards = [
        o
        for o in rendered_scenario("observability-all").of_kind("ConfigMap")
        if o["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert dashboards
    for s in SCENARIOS:
        if s != "observability-all":
            assert not {"ServiceMonitor", "PrometheusRule"} & kinds[s]


def test_session_and_webhook_can_be_left_out() -> None:
    from tests.chart.render import render

    r = render("default", {"session": {"enabled": False}, "webhook": {"enabled": False}})
    components = {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in r.objects}
    assert components == {"gateway", "model-worker", "test"}
    for obj in r.objects:
        kubernetes_validate.validate(obj, KUBE_VERSIONS[0], strict=True)
    gateway_np = r.get("NetworkPolicy", "rel-switchyard-gateway")
    assert "session" not in str(gateway_np) and "webhook" not in str(gateway_np)


def test_the_package_holds_the_chart_and_nothing_else(tmp_path) -> None:
    import tarfile

    archive = helm.package(str(CHART), destination=str(tmp_path))
    with tarfile.open(archive) as tar:
        names = {n.removeprefix("switchyard/") for n in tar.getnames()}
    assert {
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "README.md",
        "templates/NOTES.txt",
    } <= names
    assert any(n.startswith("dashboards/") and n.endswith(".json") for n in names)
    assert not [n for n in names if n.startswith("ci/") or n.endswith(".py")]
