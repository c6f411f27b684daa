"""OpenTelemetry tracing: one provider per process, OTLP export when configured."""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

log = logging.getLogger(__name__)
_configured = False
_recording = False


def setup_tracing(
    service: str, version: str, otlp_endpoint: str | None, sample_ratio: float | None = None
) -> bool:
    """Install the SDK provider once per process so spans (and log trace ids) are real.

    Spans leave the process only when ``otlp_endpoint`` is set. Unsampled spans still carry
    trace ids (for logs and propagation) but record nothing, so they cost little; by default
    every trace is sampled when there is somewhere to send it, and none otherwise.

    Returns whether spans are recorded at all (an exporter is configured): without one,
    request handling makes span contexts only (see ``middleware``).
    """
    global _configured, _recording
    if _configured:
        return _recording
    ratio = sample_ratio if sample_ratio is not None else (1.0 if otlp_endpoint else 0.0)
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": version}),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
        log.info("exporting traces over OTLP", extra={"otlp_endpoint": otlp_endpoint})
    trace.set_tracer_provider(provider)
    _configured = True
    _recording = bool(otlp_endpoint)
    return _recording


def trace_headers() -> list[tuple[str, str]]:
    """W3C ``traceparent`` (and ``tracestate``) for the current span, as outbound request
    headers: what OpenTelemetry's W3C propagator writes, formatted directly because the hot
    path calls this on every request (W3C trace context is what all our services use)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return []
    headers = [
        (
            "traceparent",
            f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}",
        )
    ]
    if context.trace_state:
        headers.append(("tracestate", context.trace_state.to_header()))
    return headers
