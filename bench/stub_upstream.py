"""A fast OpenAI-compatible upstream stub for proxy benchmarks.

A raw asyncio HTTP/1.1 server (uvloop when installed): keep-alive, pipelining, fixed
precomputed responses, no framework. It serves:

- ``POST /v1/chat/completions``: a fixed small ``chat.completion`` JSON; with
  ``"stream": true``, a fixed SSE stream of ``--chunks`` chunks then ``data: [DONE]``, sent
  as HTTP chunked transfer encoding, with ``--chunk-delay-ms`` between events (default 0:
  the whole stream in one write).
- ``GET /v1/models`` (OpenAI list shape), ``GET /readyz``, ``/healthz``, ``/health``
  (vllm-router's probe), ``/load`` (``{"in_flight", "queued", "capacity", "max_queue"}``)
  and ``/metrics`` (empty Prometheus text, for routers that scrape it).

Run: ``python bench/stub_upstream.py --port 9001 [--chunks 16] [--chunk-delay-ms 0]``.
It prints ``stub listening on http://HOST:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any, cast

try:
    import uvloop
except ImportError:  # plain asyncio works, only slower
    uvloop = None  # type: ignore[assignment]

MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"content-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"\r\n" + body
    )


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Responses:
    """Every response body, built once at startup."""

    def __init__(self, model: str, chunks: int, capacity: int) -> None:
        self.model = model
        self.capacity = capacity
        completion = {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "The sky is blue."},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        }
        self.completion = _response("200 OK", _dumps(completion))
        models = {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 1700000000, "owned_by": "bench"}],
        }
        self.models = _response("200 OK", _dumps(models))
        self.ok = _response("200 OK", b'{"status":"ok"}')
        self.metrics = _response("200 OK", b"", b"text/plain; version=0.0.4")
        self.not_found = _response(
            "404 Not Found",
            b'{"error":{"message":"not found","type":"invalid_request_error","code":null}}',
        )
        self.bad_request = _response(
            "400 Bad Request",
            b'{"error":{"message":"bad request","type":"invalid_request_error","code":null}}',
        )
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\n"
            b"content-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n"
            b"\r\n"
        )
        events = []
        for i in range(chunks):
            delta: dict[str, Any] = {"role": "assistant"} if i == 0 else {}
            delta["content"] = f"tok{i} "
            event = {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": "stop" if i == chunks - 1 else None,
                    }
                ],
            }
            events.append(_chunk(b"data: " + _dumps(event) + b"\n\n"))
        events.append(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        self.stream_events = events
        self.stream_all = self.stream_head + b"".join(events)

    def load(self, in_flight: int) -> bytes:
        body = {
            "in_flight": in_flight,
            "queued": 0,
            "capacity": self.capacity,
            "max_queue": self.capacity,
        }
        return _response("200 OK", _dumps(body))


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _wants_stream(body: bytes) -> bool:
    if b'"stream"' not in body:
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


class State:
    in_flight = 0


class StubProtocol(asyncio.Protocol):
    def __init__(self, responses: Responses, delay: float) -> None:
        self.r = responses
        self.delay = delay
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming: asyncio.Task[None] | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self.streaming is not None:
            self.streaming.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.streaming is None:
            self._process()

    def _fail(self) -> None:
        assert self.transport is not None
        self.transport.write(self.r.bad_request)
        self.transport.close()
        self.closing = True

    def _process(self) -> None:
        transport = self.transport
        assert transport is not None
        buf = self.buf
        out: list[bytes] = []
        while not self.closing:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail()
                break
            head = bytes(buf[:end]).lower()
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            parts = request_line.split(b" ")
            if len(parts) != 3:
                self._fail()
                break
            method, target, version = parts
            start = end + 4
            if b"\r\ntransfer-encoding:" in head and b"chunked" in head:
                decoded = _dechunk(buf, start)
                if decoded is None:
                    break
                body, consumed = decoded
            else:
                length = 0
                i = head.find(b"\r\ncontent-length:")
                if i >= 0:
                    j = head.find(b"\r\n", i + 17)
                    try:
                        length = int(head[i + 17 : j if j >= 0 else None])
                    except ValueError:
                        self._fail()
                        break
                if length > MAX_BODY:
                    self._fail()
                    break
                if len(buf) < start + length:
                    break
                body = bytes(buf[start : start + length])
                consumed = start + length
            del buf[:consumed]
            keep_alive = (
                b"\r\nconnection: close" not in head
                if version == b"http/1.1"
                else b"\r\nconnection: keep-alive" in head
            )
            path = target.split(b"?", 1)[0]
            if method == b"post" and path == b"/v1/chat/completions":
                if _wants_stream(body):
                    if self.delay <= 0:
                        out.append(self.r.stream_all)
                    else:
                        if out:
                            transport.write(b"".join(out))
                            out.clear()
                        self.streaming = asyncio.get_running_loop().create_task(
                            self._stream(keep_alive)
                        )
                        return
                else:
                    out.append(self.r.completion)
            elif method == b"get":
                out.append(self._get(path))
            else:
                out.append(self.r.not_found)
            if not keep_alive:
                transport.write(b"".join(out))
                transport.close()
                self.closing = True
                return
        if out:
            transport.write(b"".join(out))

    def _get(self, path: bytes) -> bytes:
        if path == b"/v1/models":
            return self.r.models
        if path in (b"/readyz", b"/healthz", b"/health"):
            return self.r.ok
        if path == b"/load":
            return self.r.load(State.in_flight)
        if path == b"/metrics":
            return self.r.metrics
        return self.r.not_found

    async def _stream(self, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        State.in_flight += 1
        try:
            first, *rest = self.r.stream_events
            transport.write(self.r.stream_head + first)
            for event in rest:
                await asyncio.sleep(self.delay)
                if self.closing:
                    return
                transport.write(event)
        finally:
            State.in_flight -= 1
            self.streaming = None
        if not keep_alive:
            transport.close()
            self.closing = True
        elif self.buf:
            self._process()


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``start``; None until it is complete."""
    body = bytearray()
    pos = start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            while trailer_end > pos:  # skip trailers
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 2
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        pos += size + 2


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    responses = Responses(args.model, args.chunks, args.capacity)
    delay = args.chunk_delay_ms / 1000
    server = await loop.create_server(
        lambda: StubProtocol(responses, delay),
        host=args.host,
        port=args.port,
        backlog=4096,
        reuse_address=True,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    port = server.sockets[0].getsockname()[1]
    print(f"stub listening on http://{args.host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--model", default="bench-model", help="model id it reports")
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per stream")
    parser.add_argument(
        "--chunk-delay-ms", type=float, default=0.0, help="delay between stream events"
    )
    parser.add_argument("--capacity", type=int, default=4096, help="capacity reported by /load")
    args = parser.parse_args(argv)
    if uvloop is not None:
        uvloop.run(serve(args))
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
