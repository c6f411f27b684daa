"""Background work of the worker's lifespan: loading the model, watching the engine's load."""

from __future__ import annotations

import asyncio
import logging
import time

from switchyard_model_worker.backends.base import ModelLoadError
from switchyard_model_worker.engine import Engine

log = logging.getLogger(__name__)


async def load_model(engine: Engine) -> None:
    """Load the model; a failure leaves the worker alive, not ready, with a clear log line."""
    status = engine.status
    status.started_at = time.monotonic()
    try:
        await engine.backend.load()
    except ModelLoadError as exc:
        status.state, status.error = "failed", str(exc)
        log.error("model failed to load; this worker stays not-ready: %s", exc)
        return
    except Exception as exc:
        status.state, status.error = "failed", f"{type(exc).__name__}: {exc}"
        log.exception("model failed to load; this worker stays not-ready")
        return
    status.seconds = round(time.monotonic() - status.started_at, 3)
    engine.metrics.model_load_seconds.set(status.seconds)
    engine.metrics.model_loaded.set(1)
    status.state = "loaded"
    log.info(
        "model ready",
        extra={"model": engine.model_name, "seconds": status.seconds},
    )


async def watch_engine_load(engine: Engine, interval: float) -> None:
    """Keep ``engine.engine_load`` and its gauges current with the engine's own report."""
    while True:
        if engine.loaded:
            try:
                report = await engine.backend.engine_load()
            except Exception:  # a scrape failure must never stop the worker
                log.warning("reading the engine's load failed", exc_info=True)
                report = None
            engine.engine_load = report
            engine.metrics.engine_running.set(report.running if report else float("nan"))
            engine.metrics.engine_waiting.set(report.waiting if report else float("nan"))
        await asyncio.sleep(interval)
