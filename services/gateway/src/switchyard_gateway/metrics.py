"""Gateway metrics. Labels are bounded: route templates, known model names, instance ids.

Labelled metrics are wrapped in ``CachedLabels``: call them with the label values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence, Sized

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from switchyard_common.metrics import LATENCY_BUCKETS, CachedLabels

OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)


BACKGROUND_OUTCOMES = ("completed", "incomplete", "failed", "stopped", "released", "errored")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = CachedLabels(
            Counter(
                "switchyard_gateway_requests",
                "API requests by model, route and status code.",
                ["model", "route", "status"],
                registry=registry,
            )
        )
        self.latency = CachedLabels(
            Histogram(
                "switchyard_gateway_request_duration_seconds",
                "Time from request arrival to the end of the response.",
                ["model", "route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            )
        )
        self.ttft = CachedLabels(
            Histogram(
                "switchyard_gateway_time_to_first_token_seconds",
                "Time from request arrival to the first streamed byte sent to the client.",
                ["model"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            )
        )
        self.overhead = CachedLabels(
            Histogram(
                "switchyard_gateway_overhead_seconds",
                "Time the gateway itself adds: total time minus time waiting on the upstream.",
                ["route"],
                buckets=OVERHEAD_BUCKETS,
                registry=registry,
            )
        )
        self.in_flight = Gauge(
            "switchyard_gateway_in_flight_requests",
            "API requests being handled now.",
            registry=registry,
        )
        self.retries = CachedLabels(
            Counter(
                "switchyard_gateway_retries",
                "Attempts retried on another instance, by reason.",
                ["reason"],
                registry=registry,
            )
        )
        self.breaker_state = CachedLabels(
            Gauge(
                "switchyard_gateway_breaker_state",
                "Circuit breaker state per instance: 0 closed, 1 half-open, 2 open.",
                ["instance"],
                registry=registry,
            )
        )
        self.cache = CachedLabels(
            Counter(
                "switchyard_gateway_cache_lookups",
                "Response cache lookups by result (hit or miss).",
                ["result"],
                registry=registry,
            )
        )
        self.rate_limited = CachedLabels(
            Counter(
                "switchyard_gateway_rate_limited",
                "Requests rejected by per-key rate limits, by limit kind.",
                ["kind"],
                registry=registry,
            )
        )
        self.rejected = CachedLabels(
            Counter(
                "switchyard_gateway_backpressure_rejections",
                "Requests refused because the gateway or every instance was at capacity.",
                ["scope"],
                registry=registry,
            )
        )
        self.dependency_errors = CachedLabels(
            Counter(
                "switchyard_gateway_dependency_errors",
                "Requests served without a store that failed (rate_limit, cache): fail open.",
                ["dependency"],
                registry=registry,
            )
        )
        self.tokens = CachedLabels(
            Counter(
                "switchyard_gateway_tokens",
                "Tokens used, from upstream usage, by model and kind (prompt, completion).",
                ["model", "kind"],
                registry=registry,
            )
        )
        self.truncations = CachedLabels(
            Counter(
                "switchyard_gateway_context_truncations",
                "Responses turns whose earlier items were left out to fit the model's context "
                "(truncation='auto'), by model.",
                ["model"],
                registry=registry,
            )
        )
        self.dropped_items = CachedLabels(
            Counter(
                "switchyard_gateway_context_dropped_items",
                "Earlier conversation items left out of turns by truncation, by model.",
                ["model"],
                registry=registry,
            )
        )
        self.background = CachedLabels(
            Counter(
                "switchyard_gateway_background_responses",
                "Background responses this gateway ran, by how they ended: completed, "
                "incomplete, failed, stopped (cancelled, or its lease lost), released (given "
                "back at shutdown), errored (left to its lease).",
                ["outcome"],
                registry=registry,
            )
        )
        self.background_running = Gauge(
            "switchyard_gateway_background_running",
            "Background responses this gateway is running now.",
            registry=registry,
        )
        # Label values known in advance are exported at 0 from the start, so a dashboard
        # shows "none yet" rather than no data, and rate() sees the first event.
        for metric, values in (
            (self.retries, ("upstream_error", "busy")),
            (self.cache, ("hit", "miss")),
            (self.rejected, ("gateway", "instance")),
            (self.dependency_errors, ("rate_limit", "cache")),
            (self.background, BACKGROUND_OUTCOMES),
        ):
            for value in values:
                metric(value)


class HealthyInstances(Collector):
    """``switchyard_gateway_healthy_instances{model}``, read from the pool at scrape time (no
    cost per request). A model once seen stays listed, at 0 once nothing healthy serves it,
    so "no healthy worker for a model" is a plain comparison rather than an absence."""

    def __init__(self, models: Callable[[], Sequence[str]], serving: Callable[[str], Sized]):
        self.models = models
        self.serving = serving
        self.seen: set[str] = set()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "switchyard_gateway_healthy_instances",
            "Healthy instances whose breaker lets traffic through, by model.",
            labels=["model"],
        )
        self.seen.update(self.models())
        for model in sorted(self.seen):
            family.add_metric([model], len(self.serving(model)))
        yield family
