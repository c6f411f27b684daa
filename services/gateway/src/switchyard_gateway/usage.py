"""Requests and tokens per tenant, for chargeback.

Totals since this gateway replica started are served by ``GET /admin/v1/usage`` (sum them
across replicas, or scrape the metrics). The metrics carry a ``tenant`` label only when
``usage_tenant_label`` is on: tenants are created by admins (bounded), but a platform with
many of them may keep the label off, and then every tenant counts as ``all``. A request
costs one dict update; the metrics are computed from the totals when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

ALL = "all"


class TenantUsage(Collector):
    def __init__(self, *, tenant_label: bool) -> None:
        self.tenant_label = tenant_label
        self.totals: dict[str, list[int]] = {}  # tenant -> [requests, prompt, completion]

    def record(self, tenant: str, prompt_tokens: int, completion_tokens: int) -> None:
        totals = self.totals.get(tenant)
        if totals is None:
            totals = self.totals[tenant] = [0, 0, 0]
        totals[0] += 1
        totals[1] += prompt_tokens
        totals[2] += completion_tokens

    def report(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return [
            {"tenant": t, "requests": r, "prompt_tokens": p, "completion_tokens": c,
             "total_tokens": p + c}
            for t, (r, p, c) in sorted(self.totals.items())
            if tenant is None or t == tenant
        ]  # fmt: skip

    def collect(self) -> Iterator[CounterMetricFamily]:
        by_label: dict[str, list[int]] = {} if self.tenant_label else {ALL: [0, 0, 0]}
        for tenant, values in list(self.totals.items()):
            sums = by_label.setdefault(tenant if self.tenant_label else ALL, [0, 0, 0])
            for i, v in enumerate(values):
                sums[i] += v
        requests = CounterMetricFamily(
            "switchyard_gateway_tenant_requests",
            "Requests answered by a model, by tenant ('all' unless usage_tenant_label).",
            labels=["tenant"],
        )
        tokens = CounterMetricFamily(
            "switchyard_gateway_tenant_tokens",
            "Tokens used, by tenant ('all' unless usage_tenant_label) and kind.",
            labels=["tenant", "kind"],
        )
        for label, (count, prompt, completion) in sorted(by_label.items()):
            requests.add_metric([label], count)
            tokens.add_metric([label, "prompt"], prompt)
            tokens.add_metric([label, "completion"], completion)
        yield requests
        yield tokens
