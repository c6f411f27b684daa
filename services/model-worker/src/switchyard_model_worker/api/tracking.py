"""Count every API request by endpoint and final status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from switchyard_model_worker.model_runner import ModelRunner


@contextmanager
def counted(runner: ModelRunner, endpoint: str) -> Iterator[None]:
    """Count the request as 200 unless an error escapes; then as that error's status."""
    try:
        yield
    except Exception as exc:
        runner.metrics.requests.labels(endpoint, str(getattr(exc, "status_code", 500))).inc()
        raise
    runner.metrics.requests.labels(endpoint, "200").inc()
