"""The NetworkPolicies select real pods and, together, admit exactly the calls the services make."""

from __future__ import annotations

import pytest

from tests.chart.conftest import rendered_scenario
from tests.chart.netpol import Endpoint, allowed, release_pods
from tests.chart.render import SCENARIOS, Rendered, selector_matches

PROMETHEUS = Endpoint(
    "prometheus", {"app.kubernetes.io/name": "prometheus"}, namespace="monitoring"
)
KUBE_DNS = Endpoint("kube-dns", {"k8s-app": "kube-dns"}, namespace="kube-system")
STRANGER = Endpoint("stranger", {"app": "stranger"})
REDIS = Endpoint("redis", {"app": "redis"}, namespace="data")
POSTGRES = Endpoint("postgres", {"app": "postgres"}, namespace="data")
CONSUL_AGENT = Endpoint("consul-agent", ip="10.0.12.7")  # the node's address
KUBE_API = Endpoint("kube-api", ip="10.96.0.1")
PUBLIC = Endpoint("public-webhook-target", ip="93.184.216.34")
METADATA = Endpoint("cloud-metadata", ip="169.254.169.254")
PRIVATE = Endpoint("private-address", ip="10.1.2.3")


def _by_component(pods: list[Endpoint]) -> dict[str, list[Endpoint]]:
    out: dict[str, list[Endpoint]] = {}
    for p in pods:
        out.setdefault(p.labels["app.kubernetes.io/component"], []).append(p)
    return out


def test_every_policy_selects_pods(rendered: Rendered) -> None:
    pods = release_pods(rendered)
    policies = rendered.of_kind("NetworkPolicy")
    assert len(policies) >= 2
    for np in policies:
        assert any(selector_matches(np["spec"]["podSelector"], p.labels) for p in pods), np[
            "metadata"
        ]["name"]
        assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    # Every long-running component is covered by one.
    for d in rendered.of_kind("Deployment"):
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert sum(selector_matches(np["spec"]["podSelector"], labels) for np in policies) == 1


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_calls_services_make_are_admitted(scenario: str) -> None:
    r = rendered_scenario(scenario)
    nps = r.of_kind("NetworkPolicy")
    pods = release_pods(r)
    by = _by_component(pods)
    (gateway,) = by["gateway"]
    values = r.merged

    for worker in by["model-worker"]:
        assert allowed(nps, gateway, worker, worker.ports["http"]), worker.name
    for name in ("session", "webhook"):
        for pod in by.get(name, []):
            assert allowed(nps, gateway, pod, pod.ports["http"]), pod.name
    for test in by.get("test", []):
        assert allowed(nps, test, gateway, gateway.ports["http"])
    for owner in r.of_kind("Deployment"):
        pod = next(p for p in pods if p.name == owner["metadata"]["name"])
        assert allowed(nps, PROMETHEUS, pod, pod.ports["internal"]), f"metrics of {pod.name}"
        assert allowed(nps, pod, KUBE_DNS, 53, "UDP") and allowed(nps, pod, KUBE_DNS, 53, "TCP")
        if values["consul"]["enabled"]:
            assert allowed(nps, pod, CONSUL_AGENT, values["consul"]["port"]), pod.name
    if values["redis"]["url"] or values["redis"]["existingSecret"]:
        assert allowed(nps, gateway, REDIS, values["redis"]["port"])
    else:
        assert not allowed(nps, gateway, REDIS, values["redis"]["port"])
    assert allowed(nps, gateway, KUBE_API, 443) is (not values["consul"]["enabled"])
    for name in ("session", "webhook"):
        db = values[name]["database"]
        for pod in by.get(name, []):
            assert allowed(nps, pod, POSTGRES, db["port"]) is bool(
                db["url"] or db["existingSecret"]
            )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_nothing_else_is_admitted(scenario: str) -> None:
    r = rendered_scenario(scenario)
    nps = r.of_kind("NetworkPolicy")
    by = _by_component(release_pods(r))
    (gateway,) = by["gateway"]
    for worker in by["model-worker"]:
        assert not allowed(nps, STRANGER, worker, worker.ports["http"])
        # Metrics and probes have their own port: only Prometheus reaches it, and only it.
        assert not allowed(nps, STRANGER, worker, worker.ports["internal"])
        assert not allowed(nps, gateway, worker, worker.ports["internal"])
        assert not allowed(nps, PROMETHEUS, worker, worker.ports["http"])
        # An engine beside the worker is reached only through the worker.
        if "engine" in worker.ports:
            assert not allowed(nps, gateway, worker, worker.ports["engine"])
        for other in by.get("session", []) + by.get("webhook", []):
            assert not allowed(nps, worker, other, other.ports["http"])
        assert not allowed(nps, worker, PUBLIC, 443)
    for pod in by.get("session", []) + by.get("webhook", []):
        assert not allowed(nps, STRANGER, pod, pod.ports["http"])
    for pod in by.get("session", []):
        assert not allowed(nps, pod, PUBLIC, 443)
    for job in by.get("session-migrate", []) + by.get("webhook-migrate", []):
        # Migrations reach their database and nothing else.
        assert allowed(nps, job, POSTGRES, 5432) and allowed(nps, job, KUBE_DNS, 53, "UDP")
        assert not allowed(nps, job, gateway, gateway.ports["http"])
        assert not allowed(nps, job, PUBLIC, 443)
        assert not allowed(nps, gateway, job, 8080)
    for pod in by.get("webhook", []):
        # Deliveries go to public addresses only.
        assert allowed(nps, pod, PUBLIC, 443)
        assert not allowed(nps, pod, PRIVATE, 443)
        assert not allowed(nps, pod, METADATA, 80)


def test_gateway_ingress_can_be_restricted() -> None:
    r = rendered_scenario("consul-off")
    nps = r.of_kind("NetworkPolicy")
    by = _by_component(release_pods(r))
    (gateway,) = by["gateway"]
    port = gateway.ports["http"]
    ingress_controller = Endpoint("nginx", {"app": "nginx"}, namespace="ingress-nginx")
    assert allowed(nps, ingress_controller, gateway, port)
    assert not allowed(nps, STRANGER, gateway, port)
    assert allowed(nps, by["test"][0], gateway, port)
    # With no restriction anyone may call the API (it checks keys itself).
    default = rendered_scenario("default")
    (gw,) = _by_component(release_pods(default))["gateway"]
    assert allowed(default.of_kind("NetworkPolicy"), STRANGER, gw, port)


def test_policies_can_be_switched_off() -> None:
    from tests.chart.render import render

    assert render("default", {"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy") == []
