"""Per-tenant usage for chargeback: the admin API's totals per tenant, and the bounded
metric (one ``tenant="all"`` series unless the operator turns the tenant label on)."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from switchyard_gateway.usage import TenantUsage
from tests.observability.conftest import Observed
from tests.observability.platform import scrape
from tests.support.procs import metric_value


def test_admin_usage_reports_each_tenant_and_needs_an_admin_key(observed: Observed) -> None:
    platform = observed.platform.platform
    admin = {"Authorization": f"Bearer {platform.api_key}"}
    r = httpx.get(f"{platform.gateway}/admin/v1/usage", headers=admin)
    assert r.status_code == 200, r.text
    tenants = {row["tenant"]: row for row in r.json()["data"]}
    assert tenants["acme"]["requests"] >= 1  # the rate-limited key's one answered request
    default = next(row for t, row in tenants.items() if t != "acme")
    assert default["prompt_tokens"] > 0 and default["completion_tokens"] > 0
    assert default["total_tokens"] == default["prompt_tokens"] + default["completion_tokens"]
    only = httpx.get(f"{platform.gateway}/admin/v1/usage", params={"tenant": "acme"},
                     headers=admin).json()["data"]  # fmt: skip
    assert [row["tenant"] for row in only] == ["acme"]
    assert httpx.get(f"{platform.gateway}/admin/v1/usage").status_code == 401
    text = scrape(platform.gateway)
    requests = sum(row["requests"] for row in tenants.values())
    assert metric_value(text, "switchyard_gateway_tenant_requests_total", {"tenant": "all"}) == (
        requests
    )


def test_the_tenant_label_only_when_turned_on() -> None:
    for labelled in (False, True):
        registry = CollectorRegistry()
        usage = TenantUsage(tenant_label=labelled)
        registry.register(usage)
        for tenant in ("acme", "globex", "acme"):
            usage.record(tenant, 10, 2)
        text = generate_latest(registry).decode()
        acme = {"tenant": "acme" if labelled else "all", "kind": "prompt"}
        assert metric_value(text, "switchyard_gateway_tenant_tokens_total", acme) == (
            20 if labelled else 30
        )
        assert ('tenant="globex"' in text) == labelled
        assert usage.report("acme") == [{"tenant": "acme", "requests": 2, "prompt_tokens": 20,
                                         "completion_tokens": 4, "total_tokens": 24}]  # fmt: skip
