"""A lean HTTP/1.1 client for the hot path: pooled keep-alive connections to worker instances.

The gateway sends one kind of request upstream: a POST with a JSON body it already holds as
bytes, answered with a small JSON body or an SSE stream. A general-purpose client pays for
much it does not need (cookie jars, redirects, tracing hooks, per-request timeout objects,
several tasks and futures per request): aiohttp cost ~140 µs of CPU per proxied request,
about 60% of the gateway's total. This client is an ``asyncio.Protocol`` on ``httptools``'
response parser (llhttp, the parser behind Node.js): one write per request, callbacks fill
the response in place, one future per wait.

- **Pool**: idle connections are kept per origin (LIFO, at most ``max_idle`` each) for
  ``keepalive_seconds``, under the 5 s keep-alive of uvicorn-based engines, so a reused
  connection is rarely one the server is closing. A connection the server closed while idle
  leaves the pool at once; if a reused connection still fails before any response byte, the
  request is sent once more on a fresh connection.
- **Timeouts**: ``connect_timeout`` for the TCP (and TLS) connect; ``read_timeout`` for
  every wait on the upstream, the first byte included. The caller bounds the total.
- **Streams** are relayed as they arrive; reading pauses while more than 256 KiB is
  buffered and unread (a slow client slows the upstream, memory stays bounded).
- **Errors**: :class:`ConnectFailed` (nothing was received: safe to try elsewhere),
  :class:`ReadTimeout`, :class:`ResponseBroken` (the connection dropped or sent bad HTTP
  mid-response). All are :class:`UpstreamIOError`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

_HIGH_WATER = 256 * 1024


class UpstreamIOError(Exception):
    """The upstream could not be reached or did not answer properly."""


class ConnectFailed(UpstreamIOError, ConnectionError):
    """No response byte was received: the request may be sent elsewhere."""


class ReadTimeout(UpstreamIOError, TimeoutError):
    """The upstream sent nothing within the read timeout."""


class ResponseBroken(UpstreamIOError, ConnectionError):
    """The connection dropped, or the upstream sent malformed HTTP, mid-response."""


@dataclass(frozen=True)
class Origin:
    host: str
    port: int
    tls: bool
    host_header: bytes

    @classmethod
    def from_url(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        return cls(parts.hostname, port, tls, parts.netloc.encode("idna"))


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """Request headers as wire bytes (``name: value\r\n`` each), checked for CR/LF."""
    lines = []
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError("header names and values must not contain CR or LF")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One upstream connection; holds the response being read on it."""

    def __init__(self, client: UpstreamClient, origin: Origin) -> None:
        self.client = client
        self.origin = origin
        self.loop = client.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        """Ready for the next request (or idle): no response state left."""
        self.in_use = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.headers_done = False
        self.done = False
        self.received = False
        self.keep_alive = False
        self.error: UpstreamIOError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if not self.in_use:
            self.abort()  # an idle connection has nothing to receive: not reusable
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ResponseBroken(f"malformed response from the upstream: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        aborted_here = self.closed
        self.closed = True
        self.client._forget(self)
        if self.done:
            return
        if self.headers_done and self._read_until_close() and exc is None and not aborted_here:
            self.done = True  # a body delimited by the end of the connection
            self._wake()
        elif not self.received:
            self._fail(ConnectFailed("the upstream closed the connection before answering"))
        else:
            self._fail(ResponseBroken("the upstream closed the connection mid-response"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        self.done = True
        self._wake()

    # response state
    def _read_until_close(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _fail(self, error: UpstreamIOError) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Until the parser has more for us, the connection fails, or the read timeout."""
        if self.error is not None:
            raise self.error
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_later(self.client.read_timeout, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout("the upstream did not answer in time"))


class UpstreamResponse:
    """Status, headers and body of one upstream answer. ``release()`` or ``close()`` it."""

    __slots__ = ("_conn", "status")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = conn.status

    def header(self, name: bytes) -> str | None:
        """A response header's value (``name`` in lower case), or None."""
        value = self.raw_header(name)
        return None if value is None else value.decode("latin-1")

    def raw_header(self, name: bytes) -> bytes | None:
        """A response header's value as received (``name`` in lower case), or None."""
        for key, value in self._conn.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def complete(self) -> bool:
        """The whole response has arrived (some of it may still be unread)."""
        return self._conn.done

    async def read(self) -> bytes:
        conn = self._conn
        parts = []
        while not conn.done:
            if conn.chunks:
                parts.append(conn.take())  # keeps reading from pausing on a large body
            await conn.wait()
        if conn.chunks:
            parts.append(conn.take())
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: everything buffered so far, in one piece per wait."""
        conn = self._conn
        while True:
            if conn.chunks:
                yield conn.take()
            elif conn.done:
                return
            else:
                await conn.wait()

    def release(self) -> None:
        """Give the connection back for reuse if the response was read in full, else close."""
        conn = self._conn
        if conn.done and conn.keep_alive and not conn.closed:
            self._conn.client._put(conn)
        else:
            conn.abort()

    def close(self) -> None:
        """Drop the connection (an unfinished stream: tells the upstream to stop)."""
        self._conn.abort()


class UpstreamClient:
    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_idle: int = 256,
        keepalive_seconds: float = 4.0,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self.keepalive_seconds = keepalive_seconds
        self._origins: dict[str, Origin] = {}
        self._idle: dict[Origin, list[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._ssl: ssl.SSLContext | None = None

    def origin(self, url: str) -> Origin:
        found = self._origins.get(url)
        if found is None:
            found = self._origins[url] = Origin.from_url(url)
        return found

    async def post(self, url: str, path: bytes, headers: bytes, body: bytes) -> UpstreamResponse:
        """Send ``POST path`` with ``headers`` (wire bytes, see :func:`encode_headers`) and
        ``body``; return once the response status and headers have arrived."""
        origin = self.origin(url)
        head = b"POST %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n%s\r\n" % (
            path, origin.host_header, len(body), headers,
        )  # fmt: skip
        conn = self._idle_connection(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, head, body)
            except ConnectFailed:
                pass  # the server closed the idle connection as we sent: once more, fresh
        return await self._exchange(await self._connect(origin), head, body)

    async def _exchange(self, conn: _Connection, head: bytes, body: bytes) -> UpstreamResponse:
        assert conn.transport is not None
        conn.in_use = True
        self._busy.add(conn)
        try:
            if len(body) < 16384:  # one write; copying a small body costs less than a second
                conn.transport.write(head + body)
            else:
                conn.transport.writelines((head, body))
            while not conn.headers_done:
                await conn.wait()
        except BaseException:
            conn.abort()
            raise
        return UpstreamResponse(conn)

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive_seconds:
                return conn
            conn.abort()
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        context = None
        if origin.tls:
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self, origin), origin.host, origin.port, ssl=context
                )
        except TimeoutError:
            raise ConnectFailed(f"connect to {origin.host}:{origin.port} timed out") from None
        except OSError as exc:
            raise ConnectFailed(f"connect to {origin.host}:{origin.port} failed: {exc}") from exc
        return conn

    def _put(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= self.max_idle:
            conn.abort()
            return
        conn._reset()
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _forget(self, conn: _Connection) -> None:
        self._busy.discard(conn)
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    async def close(self) -> None:
        for conn in [*self._busy, *(c for idle in self._idle.values() for c in idle)]:
            conn.abort()
        self._idle.clear()
        self._busy.clear()
        await asyncio.sleep(0)  # let the transports run their connection_lost
