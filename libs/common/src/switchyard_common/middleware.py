"""A pure-ASGI middleware: request id, trace span, request metrics. No body buffering."""

from __future__ import annotations

import time
import uuid
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchyard_common.context import REQUEST_ID_HEADER, REQUEST_ID_SCOPE_KEY, request_id_var
from switchyard_common.metrics import HttpMetrics

_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_UNTRACKED = frozenset({"/healthz", "/readyz", "/metrics"})


def _valid_request_id(raw: bytes) -> str | None:
    if 0 < len(raw) <= 128 and raw.isascii():
        text = raw.decode()
        if text.replace("-", "").replace("_", "").replace(".", "").isalnum():
            return text
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, service: str) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = trace.get_tracer(f"switchyard.{service}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        carrier: dict[str, str] = {}
        for key, value in scope["headers"]:
            if key == _HEADER_BYTES:
                request_id = _valid_request_id(value)
            elif key in (b"traceparent", b"tracestate"):
                carrier[key.decode()] = value.decode("latin-1")
        request_id = request_id or uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()
        header = (_HEADER_BYTES, request_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        path = scope["path"]
        tracked = path not in _UNTRACKED
        if tracked:
            self.metrics.in_flight.inc()
        ctx = propagate.extract(carrier) if carrier else None
        try:
            with self.tracer.start_as_current_span(
                f"{scope['method']} {path}" if tracked else path,
                context=ctx,
                kind=SpanKind.SERVER,
                record_exception=False,
            ) as span:
                await self.app(scope, receive, send_wrapper)
                span.set_attribute("http.response.status_code", status)
        finally:
            request_id_var.reset(token)
            if tracked:
                self.metrics.in_flight.dec()
                route = _route_template(scope)
                method = scope["method"]
                self.metrics.requests.labels(route, method, str(status)).inc()
                self.metrics.duration.labels(route, method).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
