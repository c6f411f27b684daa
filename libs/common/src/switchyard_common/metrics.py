"""Prometheus metrics: one registry per app, so several apps can live in one process."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Buckets for HTTP latency in seconds, from sub-millisecond proxy work to long generations.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
)  # fmt: skip


class HttpMetrics:
    """Request metrics every service exposes, labelled by route template, never raw path."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        prefix = f"switchyard_{service.replace('-', '_')}"
        self.requests = Counter(
            f"{prefix}_http_requests",
            "HTTP requests handled, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            f"{prefix}_http_request_duration_seconds",
            "Time from request start to the end of the response body.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{prefix}_http_requests_in_flight",
            "HTTP requests currently being handled.",
            registry=registry,
        )


class CachedLabels:
    """``metric.labels(*values)``, memoised: ``labels()`` validates and hashes its arguments
    and takes a lock on every call, which shows on hot paths. Use only with bounded label
    values (the memo keeps one child per combination, as the metric itself does)."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def remove(self, *values: str) -> None:
        """Drop one child (e.g. of an instance that is gone), from the memo and the metric."""
        if self.children.pop(values, None) is not None:
            self.metric.remove(*values)

    def __call__(self, *values: str) -> Any:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = self.metric.labels(*values)
        return child
