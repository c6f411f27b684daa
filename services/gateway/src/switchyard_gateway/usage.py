"""Requests and tokens per tenant, for chargeback.

Totals since this gateway replica started are served by ``GET /admin/v1/usage`` (sum them
across replicas, or scrape the metrics). The metrics carry a ``tenant`` label only when
``usage_tenant_label`` is on: tenants are created by admins (bounded), but a platform with
many of them may keep the label off, and then every tenant counts as ``all``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter

from switchyard_common.metrics import CachedLabels

ALL = "all"


class TenantUsage:
    def __init__(self, registry: CollectorRegistry, *, tenant_label: bool) -> None:
        self.tenant_label = tenant_label
        self.totals: dict[str, list[int]] = {}  # tenant -> [requests, prompt, completion]
        self.requests = CachedLabels(
            Counter(
                "switchyard_gateway_tenant_requests",
                "Requests answered by a model, by tenant ('all' unless usage_tenant_label).",
                ["tenant"],
                registry=registry,
            )
        )
        self.tokens = CachedLabels(
            Counter(
                "switchyard_gateway_tenant_tokens",
                "Tokens used, by tenant ('all' unless usage_tenant_label) and kind.",
                ["tenant", "kind"],
                registry=registry,
            )
        )
        if not tenant_label:  # the one series there will be, from the start
            self.requests(ALL)
            self.tokens(ALL, "prompt")
            self.tokens(ALL, "completion")

    def record(self, tenant: str, prompt_tokens: int, completion_tokens: int) -> None:
        totals = self.totals.get(tenant)
        if totals is None:
            totals = self.totals[tenant] = [0, 0, 0]
        totals[0] += 1
        totals[1] += prompt_tokens
        totals[2] += completion_tokens
        label = tenant if self.tenant_label else ALL
        self.requests(label).inc()
        self.tokens(label, "prompt").inc(prompt_tokens)
        self.tokens(label, "completion").inc(completion_tokens)

    def report(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return [
            {"tenant": t, "requests": r, "prompt_tokens": p, "completion_tokens": c,
             "total_tokens": p + c}
            for t, (r, p, c) in sorted(self.totals.items())
            if tenant is None or t == tenant
        ]  # fmt: skip
