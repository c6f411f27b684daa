"""The tracer's resource, and GenAI attributes on a recording span."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchyard_common.telemetry import record_genai, resource


def test_resource_names_the_service_instance_and_its_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_POD_NAME", "gw-7f9c")
    monkeypatch.setenv("K8S_NAMESPACE_NAME", "switchyard")
    attrs = resource("gateway", "1.2.3", "gw-7f9c").attributes
    assert attrs["service.name"] == "gateway" and attrs["service.version"] == "1.2.3"
    assert attrs["service.instance.id"] == "gw-7f9c"
    assert attrs["k8s.pod.name"] == "gw-7f9c" and attrs["k8s.namespace.name"] == "switchyard"
    monkeypatch.delenv("K8S_POD_NAME")
    assert "k8s.pod.name" not in resource("gateway", "1.2.3").attributes


def test_genai_attributes_and_first_token_event() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("POST /v1/chat/completions") as span:
        record_genai(span, "chat_completions", request_model="alias", response_model="m",
                     input_tokens=7, output_tokens=3, finish_reasons=["stop"],
                     first_token_ago=0.5)  # fmt: skip
    (done,) = exporter.get_finished_spans()
    assert done.attributes is not None
    assert dict(done.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "alias",
        "gen_ai.response.model": "m", "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 3, "gen_ai.response.finish_reasons": ("stop",),
    }  # fmt: skip
    (event,) = done.events
    assert event.name == "gen_ai.first_token"
    assert done.start_time is not None and event.timestamp < done.end_time  # type: ignore[operator]


async def test_service_calls_carry_the_callers_traceparent() -> None:
    """create_http_client's hook: inside a request, the call carries its trace context;
    outside one (probes), none."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from switchyard_common.http import create_http_client

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("traceparent"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    context = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    try:
        async with create_http_client() as http:
            await http.get(url)
            with trace.use_span(NonRecordingSpan(context)):
                await http.get(url)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None, f"00-{0xABC:032x}-{0xDEF:016x}-01"]
