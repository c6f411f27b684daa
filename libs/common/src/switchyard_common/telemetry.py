"""OpenTelemetry tracing: one provider per process, OTLP export when configured."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)
_configured = False
_recording = False


# Environment the chart sets from the Downward API; both optional.
POD_ENV = "K8S_POD_NAME"
NAMESPACE_ENV = "K8S_NAMESPACE_NAME"
# GenAI semantic conventions: the operation per API route.
GENAI_OPERATIONS = {"chat_completions": "chat", "completions": "text_completion",
                    "embeddings": "embeddings", "responses": "chat"}  # fmt: skip


def resource(service: str, version: str, instance_id: str | None = None) -> Resource:
    """service.name/version/instance.id, and the k8s pod and namespace when the environment
    names them (OTEL_RESOURCE_ATTRIBUTES is merged in too, by the SDK)."""
    attributes: dict[str, str] = {"service.name": service, "service.version": version}
    if instance_id:
        attributes["service.instance.id"] = instance_id
    if pod := os.environ.get(POD_ENV):
        attributes["k8s.pod.name"] = pod
    if namespace := os.environ.get(NAMESPACE_ENV):
        attributes["k8s.namespace.name"] = namespace
    return Resource.create(attributes)


def setup_tracing(
    service: str,
    version: str,
    otlp_endpoint: str | None,
    sample_ratio: float | None = None,
    instance_id: str | None = None,
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
        resource=resource(service, version, instance_id),
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


def record_genai(
    span: trace.Span,
    route: str,
    *,
    request_model: str,
    response_model: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    finish_reasons: Sequence[str] = (),
    first_token_ago: float | None = None,
) -> None:
    """OpenTelemetry GenAI attributes on a recording span (callers check ``is_recording()``
    first, so unsampled requests pay nothing); time to first token as a span event, placed
    ``first_token_ago`` seconds before now."""
    span.set_attribute("gen_ai.operation.name", GENAI_OPERATIONS.get(route, route))
    span.set_attribute("gen_ai.request.model", request_model)
    if response_model:
        span.set_attribute("gen_ai.response.model", response_model)
    if input_tokens or output_tokens:
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    if finish_reasons:
        span.set_attribute("gen_ai.response.finish_reasons", list(finish_reasons))
    if first_token_ago is not None:
        at = time.time_ns() - int(first_token_ago * 1e9)
        span.add_event("gen_ai.first_token", timestamp=at)


def exemplar(span: trace.Span | None = None) -> dict[str, str] | None:
    """The span's trace and span ids as a histogram exemplar (shown when Prometheus scrapes
    OpenMetrics), or None for an unsampled span: nothing to link to, nothing added."""
    span = span or trace.get_current_span()
    if not span.is_recording():
        return None
    context = span.get_span_context()
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


async def inject_trace_context(request: httpx.Request) -> None:
    """httpx request hook: the calling request's ``traceparent`` on every service-to-service
    call (nothing outside a request, e.g. health probes)."""
    for name, value in trace_headers():
        request.headers[name] = value
