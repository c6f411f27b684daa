"""The app factory every service uses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from switchyard_common.errors import NotFoundError, install_error_handlers, json_response
from switchyard_common.logging import configure_logging
from switchyard_common.metrics import HttpMetrics
from switchyard_common.middleware import RequestContext
from switchyard_common.readiness import Readiness, ReadinessReport
from switchyard_common.registration import Advertisement, consul_registration
from switchyard_common.settings import ServiceSettings
from switchyard_common.telemetry import setup_tracing

log = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# Builds the request context: ``(metrics, service_name, recording=...)``.
ContextFactory = Callable[..., RequestContext]


class ServiceApp(FastAPI):
    """FastAPI with the request context (id, span, metrics) ahead of the framework, so it
    also covers what a service's own context serves without routing (see ``middleware``)."""

    request_context: RequestContext | None = None
    internal_port: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.internal_port is not None and scope["type"] == "http":
            server = scope.get("server")
            internal = server is not None and server[1] == self.internal_port
            if not _port_serves(internal, scope["path"]):
                await NotFoundError("Not found.").to_response()(scope, receive, send)
                return
        if scope["type"] != "http" or self.request_context is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        await self.request_context(scope, receive, send, super().__call__)


# What the internal port serves when there is one; the public port serves all but metrics.
INTERNAL_PATHS = frozenset({"/metrics", "/healthz", "/readyz", "/startupz"})


def _port_serves(internal: bool, path: str) -> bool:
    return path in INTERNAL_PATHS if internal else path != "/metrics"


@asynccontextmanager
async def _no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def create_service_app(
    settings: ServiceSettings,
    *,
    lifespan: Lifespan | None = None,
    routers: Sequence[APIRouter] = (),
    configure_logs: bool = True,
    request_context: ContextFactory = RequestContext,
    api_docs: bool = True,
) -> ServiceApp:
    """Build a FastAPI app with request ids, OpenAI error JSON, health, readiness and metrics.

    ``app.state`` holds ``settings``, ``registry`` (Prometheus) and ``readiness``; the
    service's own lifespan adds its checks with ``app.state.readiness.add_check``. With
    ``consul.address`` set, the instance registers in Consul once its lifespan has started.
    ``request_context`` builds the per-request context (a subclass may serve hot routes).
    ``api_docs=False`` serves no OpenAPI schema or docs pages (for public, keyed APIs).
    """
    if configure_logs:
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
    recording = setup_tracing(
        settings.service_name,
        settings.version,
        settings.otlp_endpoint,
        settings.trace_sample_ratio,
        settings.instance_id,
    )
    registry = CollectorRegistry()
    readiness = Readiness()
    service_lifespan = lifespan or _no_lifespan

    @asynccontextmanager
    async def lifespan_wrapper(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(app), consul_registration(app):
            log.info("service started", extra={"port": settings.port})
            yield
            readiness.draining = True
            log.info("service stopping")

    app = ServiceApp(
        title=f"switchyard {settings.service_name}",
        version=settings.version,
        lifespan=lifespan_wrapper,
        openapi_url="/openapi.json" if api_docs else None,
        docs_url="/docs" if api_docs else None,
        redoc_url="/redoc" if api_docs else None,
        # Our own middleware makes one span per request; FastAPI's native telemetry would
        # add a second layer of spans, metrics and logs on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.internal_port = settings.internal_port
    app.state.registry = registry
    app.state.readiness = readiness
    # Registration (Consul, when configured): extra tags/meta, and hooks run on SIGTERM
    # before the server stops accepting (see lifecycle.GracefulServer).
    app.state.advertisement = Advertisement()

    async def mark_not_ready() -> None:
        readiness.draining = True

    app.state.pre_stop = [mark_not_ready]
    install_error_handlers(app)
    app.request_context = request_context(
        HttpMetrics(registry, settings.service_name), settings.service_name, recording=recording
    )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False, response_model=ReadinessReport)
    async def readyz(request: Request) -> Response:
        report = await request.app.state.readiness.report()
        return json_response(report.model_dump(), 200 if report.status == "ready" else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        registry = request.app.state.registry
        # OpenMetrics when asked for (Prometheus does): the format that carries exemplars.
        if "application/openmetrics-text" in request.headers.get("accept", ""):
            text = openmetrics.generate_latest(registry)  # type: ignore[no-untyped-call]
            return Response(text, media_type=OPENMETRICS)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
