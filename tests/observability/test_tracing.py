"""One request through the gateway is one trace: every service exports over OTLP to one
receiver on loopback; the worker's span (and the session service's, for a stateful turn) is a
child of the gateway's, and both carry the OpenTelemetry GenAI attributes (time to first
token as an event on streams)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.observability.otlp import Receiver, Span, otlp_receiver
from tests.observability.platform import SERVICE_ENV, _env
from tests.support.fixtures import MODEL, Platform, start_platform, stop_platform

PREFIXES = ("GATEWAY", "MODEL_WORKER", "SESSION", "WEBHOOK")


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Receiver]]:
    with otlp_receiver() as (endpoint, receiver):
        env = {f"SWITCHYARD_{p}_OTLP_ENDPOINT": endpoint for p in PREFIXES}
        env |= {"OTEL_BSP_SCHEDULE_DELAY": "100", "K8S_NAMESPACE_NAME": "switchyard",
                **SERVICE_ENV}  # fmt: skip
        with _env(env):
            platform = start_platform(Path(tmp_path_factory.mktemp("traced")))
        try:
            yield platform, receiver
        finally:
            stop_platform(platform)


def one_trace(receiver: Receiver, request_model: str, stream: bool) -> list[Span]:
    """The spans of the trace whose gateway span served this request, once the worker's
    span is in too."""

    def complete(spans: list[Span]) -> list[Span] | None:
        for gw in spans:
            if (
                gw.service == "gateway"
                and gw.name != "POST /v1/responses"
                and gw.attributes.get("gen_ai.request.model") == (request_model)
                and ("gen_ai.first_token" in gw.events) == stream
            ):
                trace = [s for s in spans if s.trace_id == gw.trace_id]
                if any(s.service == "model-worker" for s in trace):
                    return trace
        return None

    trace: list[Span] = receiver.wait_for(complete)
    return trace


def test_a_chat_completion_is_one_trace_across_gateway_and_worker(
    traced: tuple[Platform, Receiver],
) -> None:
    platform, receiver = traced
    with openai.OpenAI(base_url=platform.base_url, api_key=platform.api_key, max_retries=0) as c:
        reply = c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5
        )
    assert reply.usage
    trace = one_trace(receiver, MODEL, stream=False)
    roots = [s for s in trace if not s.parent_id]
    assert [r.service for r in roots] == ["gateway"], "one root: the gateway's request span"
    gateway = roots[0]
    worker = next(s for s in trace if s.service == "model-worker")
    ids = {s.span_id for s in trace}
    assert all(s.parent_id in ids for s in trace if s.parent_id), "no dangling parents"
    assert worker.parent_id == gateway.span_id, "the worker continues the gateway's span"
    assert gateway.kind == worker.kind == 2  # SERVER
    for span in (gateway, worker):
        a = span.attributes
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == MODEL
        assert a["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
        assert a["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert worker.attributes["gen_ai.response.finish_reasons"] == [reply.choices[0].finish_reason]
    for span in (gateway, worker):
        r = span.resource
        assert r["service.version"] and r["service.instance.id"]
        assert r["k8s.namespace.name"] == "switchyard"


def test_a_stream_records_time_to_first_token_as_an_event(
    traced: tuple[Platform, Receiver],
) -> None:
    platform, receiver = traced
    with openai.OpenAI(base_url=platform.base_url, api_key=platform.api_key, max_retries=0) as c:
        stream = c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Count"}], max_tokens=6,
            stream=True, stream_options={"include_usage": True},  # exact counts (else estimated)
        )  # fmt: skip
        assert sum(1 for _ in stream) > 1
    trace = one_trace(receiver, MODEL, stream=True)  # its gateway span has the event
    gateway = next(s for s in trace if not s.parent_id)
    assert gateway.service == "gateway" and gateway.attributes["gen_ai.usage.output_tokens"] > 0
    # The worker's span stays open until its stream has ended: usage and why it stopped.
    worker = next(s for s in trace if s.service == "model-worker")
    assert worker.parent_id == gateway.span_id
    a = worker.attributes
    assert a["gen_ai.usage.output_tokens"] == gateway.attributes["gen_ai.usage.output_tokens"]
    assert a["gen_ai.usage.input_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] in (["length"], ["stop"])
    assert "gen_ai.first_token" in worker.events


def test_a_stateful_response_is_one_trace_across_gateway_session_and_worker(
    traced: tuple[Platform, Receiver],
) -> None:
    platform, receiver = traced
    with openai.OpenAI(base_url=platform.base_url, api_key=platform.api_key, max_retries=0) as c:
        conversation = c.conversations.create()
        reply = c.responses.create(
            model=MODEL, input="Hi", conversation=conversation.id, max_output_tokens=5
        )
    assert reply.usage

    def complete(spans: list[Span]) -> list[Span] | None:
        for gw in spans:
            if gw.service == "gateway" and gw.name == "POST /v1/responses":
                trace = [s for s in spans if s.trace_id == gw.trace_id]
                # Every service's spans are exported in their own batches: wait for the
                # worker's chat span (not only its /tokenize) and the session's write.
                names = {(s.service, s.name.split(" ")[0]) for s in trace}
                chat = ("model-worker", "POST") in names and any(
                    s.name == "POST /v1/chat/completions" for s in trace
                )
                if chat and ("session", "POST") in names:
                    return trace
        return None

    trace: list[Span] = receiver.wait_for(complete)
    roots = [s for s in trace if not s.parent_id]
    assert [r.service for r in roots] == ["gateway"], "one root: the gateway's request span"
    gateway = roots[0]
    by_id = {s.span_id: s for s in trace}
    for span in trace:
        if span.service != "gateway":  # a remote child: its parent is a span of its caller
            assert span.parent_id in by_id, f"{span.service} {span.name}: dangling parent"
            assert by_id[span.parent_id].service == "gateway", (span.service, span.name)
    session = [s for s in trace if s.service == "session"]
    assert any(s.name.startswith("POST") for s in session), "the turn is recorded"
    chat = next(s for s in trace if s.name == "POST /v1/chat/completions")
    assert chat.service == "model-worker" and chat.parent_id == gateway.span_id
    a = gateway.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.usage.input_tokens"] == reply.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == reply.usage.output_tokens
    assert chat.attributes["gen_ai.usage.output_tokens"] == reply.usage.output_tokens


def test_latency_and_ttft_histograms_link_to_traces_in_openmetrics(
    traced: tuple[Platform, Receiver],
) -> None:
    platform, receiver = traced
    with openai.OpenAI(base_url=platform.base_url, api_key=platform.api_key, max_retries=0) as c:
        stream = c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True
        )
        assert sum(1 for _ in stream) > 1
    accept = {"accept": "application/openmetrics-text; version=1.0.0"}
    for url, families in (
        (platform.gateway, ("switchyard_gateway_request_duration_seconds",
                            "switchyard_gateway_time_to_first_token_seconds")),
        (platform.worker, ("switchyard_worker_time_to_first_token_seconds",)),
    ):  # fmt: skip
        r = httpx.get(f"{url}/metrics", headers=accept)
        assert r.headers["content-type"].startswith("application/openmetrics-text")
        for family in families:
            exemplars = re.findall(rf'^{family}_bucket{{.*}} \S+ # {{.*trace_id="(\w+)"', r.text,
                                   re.MULTILINE)  # fmt: skip
            assert exemplars, f"{family}: no exemplar"
            # Each names a trace the services export (its spans may still be on their way).
            receiver.wait_for(lambda spans, e=set(exemplars): e <= {s.trace_id for s in spans})
    assert "# {" not in httpx.get(f"{platform.gateway}/metrics").text, "plain text: none"
