"""Request context for every HTTP request: request id, trace span, request metrics.

:class:`RequestContext` runs first, ahead of the framework (see ``app.ServiceApp``), and
hands the request on through :meth:`RequestContext.dispatch`; a service may subclass it to
serve some requests itself (the gateway's hot proxy routes). No body is buffered here.

Spans: with an exporter configured, every request gets an SDK span (sampled by the
provider's sampler). Without one, a span would record nothing, so the request gets only a
span *context* (the caller's trace id from ``traceparent``, or a new one): log lines and
outbound ``traceparent`` headers still carry it, at a fraction of the cost.
"""

from __future__ import annotations

import os
import random
import time
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchyard_common.context import REQUEST_ID_HEADER, request_id_var
from switchyard_common.metrics import CachedLabels, HttpMetrics

_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_UNTRACKED = frozenset({"/healthz", "/readyz", "/metrics"})


def _valid_request_id(raw: bytes) -> str | None:
    if 0 < len(raw) <= 128 and raw.isascii():
        text = raw.decode()
        if text.replace("-", "").replace("_", "").replace(".", "").isalnum():
            return text
    return None


class _ContextSpan:
    """A non-recording span made current for the request: ids without recording."""

    __slots__ = ("_token", "span")

    def __init__(self, carrier: dict[str, str] | None) -> None:
        trace_id = 0
        flags = TraceFlags.DEFAULT
        if carrier:
            parent = trace.get_current_span(propagate.extract(carrier)).get_span_context()
            if parent.is_valid:
                trace_id, flags = parent.trace_id, parent.trace_flags
        span_context = SpanContext(
            trace_id=trace_id or random.getrandbits(128),
            span_id=random.getrandbits(64) or 1,
            is_remote=False,
            trace_flags=TraceFlags(flags),
        )
        self.span = NonRecordingSpan(span_context)

    def __enter__(self) -> NonRecordingSpan:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        otel_context.detach(self._token)


class RequestContext:
    def __init__(self, metrics: HttpMetrics, service: str, *, recording: bool) -> None:
        self.tracer = trace.get_tracer(f"switchyard.{service}")
        self.recording = recording
        self.active = 0  # tracked requests in flight, read by the gauge when scraped
        metrics.in_flight.set_function(lambda: self.active)
        self.requests = CachedLabels(metrics.requests)
        self.duration = CachedLabels(metrics.duration)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        request_id = None
        carrier: dict[str, str] | None = None
        for key, value in scope["headers"]:
            if key == _HEADER_BYTES:
                request_id = _valid_request_id(value)
            elif key == b"traceparent" or key == b"tracestate":
                carrier = carrier or {}
                carrier[key.decode()] = value.decode("latin-1")
        request_id = request_id or os.urandom(16).hex()
        token = request_id_var.set(request_id)
        header = (_HEADER_BYTES, request_id.encode())
        path = scope["path"]
        method = scope["method"]
        tracked = path not in _UNTRACKED
        status = 500
        started = time.perf_counter()
        if tracked:
            self.active += 1
        try:
            # Span names use route templates, never raw paths (bounded, like metric labels):
            # the route is known once the request has been dispatched.
            with self._span(method if tracked else f"{method} {path}", carrier) as span:
                status = await self.dispatch(scope, receive, send, app, header)
                if span.is_recording():
                    span.set_attribute("http.response.status_code", status)
                    if tracked:
                        span.update_name(f"{method} {route_template(scope)}")
        finally:
            request_id_var.reset(token)
            if tracked:
                self.active -= 1
                route = route_template(scope)
                self.requests(route, method, str(status)).inc()
                self.duration(route, method).observe(time.perf_counter() - started)

    async def dispatch(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, header: tuple[bytes, bytes]
    ) -> int:
        """Serve the request through ``app`` with ``header`` (the request id) added to the
        response; the response's status. A request that fails counts as a 500."""
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await app(scope, receive, send_wrapper)
        return status

    def _span(self, name: str, carrier: dict[str, str] | None) -> Any:
        if not self.recording:
            return _ContextSpan(carrier)
        return self.tracer.start_as_current_span(
            name,
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            record_exception=False,
        )


def route_template(scope: Scope) -> str:
    """The matched route's template, for labels and span names ("unmatched" if none)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
