"""The webhook service's dispatchers and delivery egress: values reach its settings, deliveries
leave only for public addresses on the configured ports, and several pods need a database."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest

from tests.chart.conftest import rendered_scenario
from tests.chart.netpol import Endpoint, allowed, release_pods
from tests.chart.render import Rendered, render
from tests.chart.test_chart_env import _settings_from, container_env

DB = {"database": {"url": "postgresql+asyncpg://u:pw@postgres.data.svc:5432/db"}}
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

# The settings the chart sets from webhook.dispatcher / webhook.delivery / operatorTenant.
CHART_SET = [
    "dispatcher_enabled",
    "dispatcher_concurrency",
    "dispatcher_batch_size",
    "dispatcher_poll_seconds",
    "dispatcher_lease_seconds",
    "endpoint_timeout_seconds",
    "endpoint_concurrency",
    "max_response_bytes",
    "retry_schedule_seconds",
    "retry_jitter",
    "auto_disable_failures",
    "auto_disable_after_seconds",
    "rotation_grace_seconds",
    "retention_seconds",
    "operator_tenant",
]


def _get(r: Rendered, kind: str, name: str) -> dict[str, Any]:
    obj = r.get(kind, name)
    assert obj is not None, (kind, name)
    return obj


def _webhook_settings(r: Rendered) -> Any:
    from switchyard_webhook.config import WebhookSettings

    pod = _get(r, "Deployment", "rel-switchyard-webhook")["spec"]["template"]
    env = container_env(r, pod, pod["spec"]["containers"][0])
    return _settings_from(WebhookSettings, {k: v for k, v in env.items() if v is not None})


def test_the_chart_defaults_are_the_services_defaults() -> None:
    from switchyard_webhook.config import WebhookSettings

    settings = _webhook_settings(rendered_scenario("default"))
    for name in CHART_SET:
        default = WebhookSettings.model_fields[name].get_default(call_default_factory=True)
        assert getattr(settings, name) == default, name
    # Clusters allow no private network: deliveries go to public addresses only.
    assert settings.egress_allow_cidrs == []


def test_dispatcher_and_delivery_values_reach_the_service() -> None:
    webhook = {
        "operatorTenant": "ops",
        "dispatcher": {
            "enabled": False,
            "concurrency": 16,
            "batchSize": 10,
            "pollSeconds": 2.5,
            "leaseSeconds": 120,
        },
        "delivery": {
            "timeoutSeconds": 3,
            "endpointConcurrency": 2,
            "maxResponseBytes": 1024,
            "retryScheduleSeconds": [1, 2.5, 259200],
            "retryJitter": 0,
            "autoDisable": {"failures": 0, "afterSeconds": 3600},
            "rotationGraceSeconds": 60,
            "retentionSeconds": 31536000,
            "ports": [443, 8443],
        },
    }
    r = render("default", {"webhook": webhook})
    s = _webhook_settings(r)
    assert s.operator_tenant == "ops"
    assert s.dispatcher_enabled is False
    assert (s.dispatcher_concurrency, s.dispatcher_batch_size) == (16, 10)
    assert (s.dispatcher_poll_seconds, s.dispatcher_lease_seconds) == (2.5, 120.0)
    assert (s.endpoint_timeout_seconds, s.endpoint_concurrency) == (3.0, 2)
    assert s.max_response_bytes == 1024
    # Lists as JSON, large numbers without an exponent.
    assert s.retry_schedule_seconds == [1.0, 2.5, 259200.0]
    assert s.retry_jitter == 0.0
    assert (s.auto_disable_failures, s.auto_disable_after_seconds) == (0, 3600.0)
    assert (s.rotation_grace_seconds, s.retention_seconds) == (60.0, 31536000.0)
    cm = _get(r, "ConfigMap", "rel-switchyard-webhook")["data"]
    assert cm["SWITCHYARD_WEBHOOK_RETENTION_SECONDS"] == "31536000"
    # A null retention keeps events: the service reads "null" as unset.
    kept = render("default", {"webhook": {"delivery": {"retentionSeconds": None}}})
    assert _webhook_settings(kept).retention_seconds is None
    # Paused delivery is said after install.
    assert "Webhook deliveries are paused" in r.notes
    assert "Webhook deliveries are paused" not in rendered_scenario("default").notes


def test_a_setting_the_chart_sets_cannot_be_set_twice() -> None:
    with pytest.raises(helm.HelmError, match=r"webhook\.settings\.DISPATCHER_CONCURRENCY"):
        render("default", {"webhook": {"settings": {"DISPATCHER_CONCURRENCY": "8"}}})
    # Other settings still pass through.
    r = render("default", {"webhook": {"settings": {"DATABASE_POOL_SIZE": "4"}}})
    assert _webhook_settings(r).database_pool_size == 4


def _webhook_pod(r: Rendered) -> Endpoint:
    (pod,) = [p for p in release_pods(r) if p.name == "rel-switchyard-webhook"]
    return pod


def _ip(address: str) -> Endpoint:
    return Endpoint(address, ip=address)


def test_deliveries_reach_public_addresses_on_the_configured_ports_only() -> None:
    r = rendered_scenario("gpu-pools")  # delivery.ports [443, 8443]
    nps = r.of_kind("NetworkPolicy")
    webhook = _webhook_pod(r)
    for address in (PUBLIC_V4, PUBLIC_V6):
        assert allowed(nps, webhook, _ip(address), 443), address
        assert allowed(nps, webhook, _ip(address), 8443), address
        assert not allowed(nps, webhook, _ip(address), 80), address
        assert not allowed(nps, webhook, _ip(address), 22), address
        assert not allowed(nps, webhook, _ip(address), 443, "UDP"), address
    refused = [
        "169.254.169.254",  # cloud metadata
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.100.100.200",  # CGNAT, Alibaba's metadata
        "127.0.0.1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fd12:3456::1",
        "fe80::1",
        "::1",
    ]
    for address in refused:
        for port in (443, 8443):
            assert not allowed(nps, webhook, _ip(address), port), (address, port)


def test_default_deliveries_leave_on_443_only() -> None:
    r = rendered_scenario("default")
    nps = r.of_kind("NetworkPolicy")
    webhook = _webhook_pod(r)
    assert allowed(nps, webhook, _ip(PUBLIC_V4), 443)
    assert not allowed(nps, webhook, _ip(PUBLIC_V4), 80)
    assert not allowed(nps, webhook, _ip("169.254.169.254"), 443)
    # Only the webhook service delivers.
    services = {d["metadata"]["name"] for d in r.of_kind("Deployment")}
    for pod in release_pods(r):
        if pod.name in services - {"rel-switchyard-webhook"}:
            assert not allowed(nps, pod, _ip(PUBLIC_V6), 443), pod.name


def test_several_dispatchers_share_the_database() -> None:
    r = rendered_scenario("gpu-pools")
    assert _get(r, "Deployment", "rel-switchyard-webhook")["spec"]["replicas"] == 2
    assert r.get("Job", "rel-switchyard-webhook-migrate") is not None


SEVERAL_PODS: dict[str, tuple[dict[str, Any], str]] = {
    "replicas": ({"replicas": 2}, "replicas is 2"),
    "autoscaling": ({"autoscaling": {"enabled": True}}, "autoscaling.enabled"),
}


@pytest.mark.parametrize("how", sorted(SEVERAL_PODS))
@pytest.mark.parametrize("service", ["session", "webhook"])
def test_several_pods_without_a_database_fail(service: str, how: str) -> None:
    values, message = SEVERAL_PODS[how]
    with pytest.raises(helm.HelmError, match=re.escape(f"{service}.{message}")) as caught:
        render("default", {service: values})
    assert f"{service}.database" in str(caught.value)
    assert "SQLite" in str(caught.value)


@pytest.mark.parametrize("how", sorted(SEVERAL_PODS))
@pytest.mark.parametrize("service", ["session", "webhook"])
def test_several_pods_with_a_database_render(service: str, how: str) -> None:
    values, _ = SEVERAL_PODS[how]
    r = render("default", {service: {**values, **DB}})
    name = f"rel-switchyard-{service}"
    if how == "replicas":
        assert _get(r, "Deployment", name)["spec"]["replicas"] == 2
    else:
        assert r.get("HorizontalPodAutoscaler", name) is not None
    # An existing Secret is a database too.
    render("default", {service: {**values, "database": {"existingSecret": "db"}}})
