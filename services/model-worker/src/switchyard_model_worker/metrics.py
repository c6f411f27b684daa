"""Model-worker metrics, named per Prometheus conventions with a ``switchyard_worker_`` prefix."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from switchyard_model_worker.admission import Admission

QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry, admission: Admission) -> None:
        self.requests = Counter(
            "switchyard_worker_requests",
            "Requests by endpoint and outcome status code.",
            ["endpoint", "status"],
            registry=registry,
        )
        self.ttft = Histogram(
            "switchyard_worker_time_to_first_token_seconds",
            "Time from admission request to the first generated token.",
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.itl = Histogram(
            "switchyard_worker_inter_token_latency_seconds",
            "Time between consecutive streamed text deltas.",
            buckets=ITL_BUCKETS,
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "switchyard_worker_prompt_tokens",
            "Prompt tokens processed (embedding inputs included).",
            registry=registry,
        )
        self.completion_tokens = Counter(
            "switchyard_worker_completion_tokens", "Completion tokens generated.", registry=registry
        )
        self.finished = Counter(
            "switchyard_worker_generations",
            "Finished generations by finish reason (cancelled: the client went away).",
            ["finish_reason"],
            registry=registry,
        )
        self.tokens_per_second = Histogram(
            "switchyard_worker_generation_tokens_per_second",
            "Decode speed of each finished generation.",
            buckets=(1, 5, 10, 25, 50, 100, 200, 400, 800, 1600),
            registry=registry,
        )
        in_flight = Gauge(
            "switchyard_worker_requests_in_flight", "Generations running now.", registry=registry
        )
        in_flight.set_function(lambda: admission.in_flight)
        queued = Gauge(
            "switchyard_worker_queue_depth", "Requests waiting for a slot.", registry=registry
        )
        queued.set_function(lambda: admission.queued)
        capacity = Gauge(
            "switchyard_worker_capacity", "Generations that can run at once.", registry=registry
        )
        capacity.set(admission.capacity)
        max_queue = Gauge(
            "switchyard_worker_max_queue", "Requests that may wait for a slot.", registry=registry
        )
        max_queue.set(admission.max_queue)
        self.queue_wait = Histogram(
            "switchyard_worker_queue_wait_seconds",
            "Time admitted requests waited for a slot.",
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self.rejected = Counter(
            "switchyard_worker_rejected_requests",
            "Requests turned away by admission control, by reason "
            "(queue_full: 429; queue_timeout, shutting_down: 503).",
            ["reason"],
            registry=registry,
        )
        for reason in ("queue_full", "queue_timeout", "shutting_down"):
            self.rejected.labels(reason)  # exported at 0 from the start
        self.embedding_inputs = Counter(
            "switchyard_worker_embedding_inputs", "Texts embedded.", registry=registry
        )
        self.engine_running = Gauge(
            "switchyard_worker_engine_requests_running",
            "Requests the engine beside the worker reports running (NaN: not reported).",
            registry=registry,
        )
        self.engine_waiting = Gauge(
            "switchyard_worker_engine_requests_waiting",
            "Requests the engine beside the worker reports waiting (NaN: not reported).",
            registry=registry,
        )
        self.engine_running.set(float("nan"))
        self.engine_waiting.set(float("nan"))
        self.model_loaded = Gauge(
            "switchyard_worker_model_loaded",
            "1 once the model has loaded, 0 while loading or after a failed load.",
            registry=registry,
        )
        self.model_load_seconds = Gauge(
            "switchyard_worker_model_load_duration_seconds",
            "How long loading the model took.",
            registry=registry,
        )
