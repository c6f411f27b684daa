"""OpenTelemetry tracing: one provider per process, OTLP export when configured."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

log = logging.getLogger(__name__)
_configured = False


def setup_tracing(
    service: str, version: str, otlp_endpoint: str | None, sample_ratio: float | None = None
) -> None:
    """Install the SDK provider once per process so spans (and log trace ids) are real.

    Spans leave the process only when ``otlp_endpoint`` is set. Unsampled spans still carry
    trace ids (for logs and propagation) but record nothing, so they cost little; by default
    every trace is sampled when there is somewhere to send it, and none otherwise.
    """
    global _configured
    if _configured:
        return
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


def inject_trace_headers(headers: MutableMapping[str, str]) -> None:
    """Add W3C ``traceparent`` for the current span to outbound request headers."""
    propagate.inject(headers)
