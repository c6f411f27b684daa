"""The model-worker app: ``create_app()`` builds it; the lifespan owns the model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from switchyard_common.app import create_service_app
from switchyard_common.registration import advertise_worker
from switchyard_model_worker.admission import Admission
from switchyard_model_worker.api import chat, models
from switchyard_model_worker.backends.base import Backend, ModelLoadError
from switchyard_model_worker.backends.llamacpp import LlamaCppBackend
from switchyard_model_worker.config import WorkerSettings
from switchyard_model_worker.engine import Engine
from switchyard_model_worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


def build_backend(settings: WorkerSettings) -> Backend:
    return LlamaCppBackend(
        settings.model_path,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        n_gpu_layers=settings.n_gpu_layers,
        reuse_prompt_prefix=settings.reuse_prompt_prefix,
    )


async def _load(engine: Engine) -> None:
    try:
        await engine.backend.load()
    except ModelLoadError as exc:
        log.error("model failed to load; this worker stays not-ready: %s", exc)
        return
    except Exception:
        log.exception("model failed to load; this worker stays not-ready")
        return
    engine.loaded = True


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
    engine = Engine(backend, admission, metrics, settings.model_name, settings.model_aliases)
    app.state.engine = engine
    advertise_worker(  # Consul registration meta and model=<name> tags (when Consul is on)
        app,
        models=[settings.model_name, *settings.model_aliases],
        backend=settings.backend,
        max_concurrency=admission.capacity,
    )

    async def model_loaded() -> bool:
        return engine.loaded

    app.state.readiness.add_check("model_loaded", model_loaded)
    # Load in the background so /healthz answers while the model loads.
    loader = asyncio.create_task(_load(engine))
    try:
        yield
    finally:
        admission.close()
        loader.cancel()
        await asyncio.gather(loader, return_exceptions=True)
        await backend.close()


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    settings = settings or WorkerSettings()
    return create_service_app(settings, lifespan=lifespan, routers=[chat.router, models.router])
