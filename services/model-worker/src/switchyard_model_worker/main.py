"""The model-worker app: ``create_app()`` builds it; the lifespan owns the model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from switchyard_common.app import create_service_app
from switchyard_model_worker.admission import Admission
from switchyard_model_worker.advertisement import advertise_worker
from switchyard_model_worker.api import chat, completions, embeddings, models, tokenize
from switchyard_model_worker.backends.factory import build_backend
from switchyard_model_worker.config import WorkerSettings
from switchyard_model_worker.loading import load_model, watch_engine_load
from switchyard_model_worker.metrics import WorkerMetrics
from switchyard_model_worker.model_runner import ModelRunner

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: WorkerSettings = app.state.settings
    backend = build_backend(settings)
    admission = Admission(
        capacity=min(settings.max_concurrency, backend.max_parallel),
        max_queue=settings.max_queue,
        queue_timeout=settings.queue_timeout_seconds,
    )
    metrics = WorkerMetrics(app.state.registry, admission)
    runner = ModelRunner(backend, admission, metrics, settings.model_name, settings.model_aliases)
    app.state.runner = runner
    advertise_worker(  # Consul registration meta and model=<name> tags (when Consul is on)
        app,
        models=[settings.model_name, *settings.model_aliases],
        backend=settings.backend,
        max_concurrency=admission.capacity,
    )

    async def model_loaded() -> bool:
        return runner.loaded

    async def backend_healthy() -> bool:
        return runner.loaded and await backend.healthy()

    app.state.readiness.add_check("model_loaded", model_loaded)
    app.state.readiness.add_check("backend_healthy", backend_healthy)
    # Load in the background so /healthz and /startupz answer while the model loads.
    tasks = [
        asyncio.create_task(load_model(runner)),
        asyncio.create_task(watch_engine_load(runner, settings.engine_metrics_interval_seconds)),
    ]
    try:
        yield
    finally:
        admission.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await backend.close()


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    routers = [
        chat.router,
        completions.router,
        embeddings.router,
        tokenize.router,
        models.router,
    ]
    return create_service_app(settings, lifespan=lifespan, routers=routers)
