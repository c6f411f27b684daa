"""Background work of the worker's lifespan: loading the model, watching the engine's load."""

from __future__ import annotations

import asyncio
import logging
import time

from switchyard_model_worker.backends.base import ModelLoadError
from switchyard_model_worker.model_runner import ModelRunner

log = logging.getLogger(__name__)


async def load_model(runner: ModelRunner) -> None:
    """Load the model; a failure leaves the worker alive, not ready, with a clear log line."""
    status = runner.status
    status.started_at = time.monotonic()
    try:
        await runner.backend.load()
    except ModelLoadError as exc:
        status.state, status.error = "failed", str(exc)
        log.error("model failed to load; this worker stays not-ready: %s", exc)
        return
    except Exception as exc:
        status.state, status.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("model failed to load; this worker stays not-ready")
        return
    status.seconds = round(time.monotonic() - status.started_at, 3)
    runner.metrics.model_load_seconds.set(status.seconds)
    runner.metrics.model_loaded.set(1)
    status.state = "loaded"
    log.info(
        "model ready",
        extra={"model": runner.model_name, "seconds": status.seconds},
    )


async def watch_engine_load(runner: ModelRunner, interval: float) -> None:
    """Keep ``runner.engine_load`` and its gauges current with the engine's own report."""
    while True:
        if runner.loaded:
            try:
                report = await runner.backend.engine_load()
            except Exception:  # a scrape failure must never stop the worker
                log.warning("reading the engine's load failed", exc_info=True)
                report = None
            runner.engine_load = report
            runner.metrics.engine_running.set(report.running if report else float("nan"))
            runner.metrics.engine_waiting.set(report.waiting if report else float("nan"))
        await asyncio.sleep(interval)
