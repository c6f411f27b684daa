"""The webhook service's Prometheus metrics (on the app's registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Outcomes of an attempt: succeeded; failed (to be retried); dead_letter (failed, no retry
# left); refused (the target failed the SSRF check at send time, counted as a failure too);
# lost (a failure not recorded: the claim's lease ran out and another dispatcher has it).
OUTCOMES = ("succeeded", "failed", "dead_letter", "refused", "lost")


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "switchyard_webhook_deliveries_total",
            "Delivery attempts, by outcome.",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        self.attempt_seconds = Histogram(
            "switchyard_webhook_attempt_duration_seconds",
            "Time from sending a delivery to its answer (or error).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.events = Counter(
            "switchyard_webhook_events_published_total",
            "Events stored in the outbox, by type.",
            ["type"],
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "switchyard_webhook_oldest_pending_age_seconds",
            "Age of the oldest delivery not yet delivered or dead-lettered (0: none).",
            registry=registry,
        )
        self.dead_letters = Gauge(
            "switchyard_webhook_dead_letter_deliveries",
            "Deliveries that ran out of retries.",
            registry=registry,
        )
        self.disabled_endpoints = Gauge(
            "switchyard_webhook_disabled_endpoints",
            "Endpoints disabled (by their tenant, or automatically after failing).",
            registry=registry,
        )
        self.auto_disabled = Counter(
            "switchyard_webhook_endpoints_auto_disabled_total",
            "Endpoints disabled automatically because they kept failing.",
            registry=registry,
        )
