"""Small shared pieces: the outbound HTTP client, SSE framing."""

from __future__ import annotations

import json

import httpx
import pytest

from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_common.sse import DONE, SSE_HEADERS, sse_event
from switchyard_common.telemetry import trace_headers

# ------------------------------------------------------------------ http


def _pool(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    return client._transport._pool  # type: ignore[attr-defined]


async def test_http_client_defaults() -> None:
    async with create_http_client() as client:
        assert client.timeout == httpx.Timeout(connect=2.0, read=60.0, write=10.0, pool=2.0)
        assert client.trust_env is False
        assert client.follow_redirects is False
        pool = _pool(client)
        assert pool._max_connections == 256
        assert pool._max_keepalive_connections == 64
        assert pool._keepalive_expiry == 30.0


async def test_http_client_custom_config_and_base_url() -> None:
    cfg = HttpClientConfig(
        connect_timeout=0.5,
        read_timeout=7.0,
        write_timeout=3.0,
        pool_timeout=1.5,
        max_connections=10,
        max_keepalive_connections=4,
        keepalive_expiry=5.0,
    )
    async with create_http_client(cfg, base_url="http://worker:8101") as client:
        assert client.timeout == httpx.Timeout(connect=0.5, read=7.0, write=3.0, pool=1.5)
        assert str(client.base_url) == "http://worker:8101"
        pool = _pool(client)
        assert pool._max_connections == 10
        assert pool._max_keepalive_connections == 4
        assert pool._keepalive_expiry == 5.0


async def test_http_client_ignores_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "http://proxy.invalid:3128")
    async with create_http_client() as client:
        assert client._mounts == {}  # type: ignore[attr-defined]


# ------------------------------------------------------------------ sse


def test_sse_event_framing() -> None:
    frame = sse_event({"id": "c1", "choices": [{"delta": {"content": "hi"}}]})
    assert frame.startswith(b"data: ")
    assert frame.endswith(b"\n\n")
    assert frame.count(b"\n") == 2
    assert json.loads(frame[len(b"data: ") : -2]) == {
        "id": "c1",
        "choices": [{"delta": {"content": "hi"}}],
    }
    # Compact JSON, no spaces between tokens.
    assert frame == b'data: {"id":"c1","choices":[{"delta":{"content":"hi"}}]}\n\n'


def test_sse_event_escapes_newlines_and_keeps_utf8() -> None:
    frame = sse_event({"content": "line1\nline2\n\ndata: fake", "emoji": "é✓"})
    # Embedded newlines stay escaped, so one payload can never split into two events.
    assert frame.count(b"\n") == 2
    assert "é✓".encode() in frame
    assert json.loads(frame[6:-2])["content"] == "line1\nline2\n\ndata: fake"


def test_sse_done_and_headers() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert SSE_HEADERS == {"cache-control": "no-cache", "x-accel-buffering": "no"}


# ------------------------------------------------------------------ telemetry


def test_trace_headers_inside_span_and_none_outside() -> None:
    from opentelemetry import trace

    from switchyard_common.telemetry import setup_tracing

    setup_tracing("plumbing", "0", None)
    assert trace_headers() == []
    with trace.get_tracer("t").start_as_current_span("s") as span:
        headers = dict(trace_headers())
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert headers["traceparent"].startswith(f"00-{trace_id}-")
