"""The lean HTTP/1.1 upstream client against a raw asyncio server each test scripts."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator

import pytest

from switchyard_gateway.upstream import (
    _HIGH_WATER,
    ConnectFailed,
    ReadTimeout,
    ResponseBroken,
    UpstreamClient,
    UpstreamIOError,
    encode_headers,
)

from .scripted_server import (
    CHUNKED_HEAD,
    Reader,
    Server,
    Writer,
    answer,
    chunk,
    keep_alive,
    until,
)


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(connect_timeout=1, read_timeout=2)
    yield client
    await client.close()


@pytest.fixture
async def quick_client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(connect_timeout=1, read_timeout=0.2)
    yield client
    await client.close()


async def post(client: UpstreamClient, server: Server, body: bytes = b"{}") -> bytes:
    response = await client.post(server.url, b"/v1/x", b"", body)
    content = await response.read()
    response.release()
    return content


@pytest.mark.parametrize("size", [20, 100_000])  # one write, and head and body apart
async def test_post_sends_the_request_and_reads_status_headers_and_body(
    client: UpstreamClient, size: int
) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(answer(b'{"busy":1}', 429, b"Retry-After: 3\r\n"))

    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    async with Server(handler) as server:
        headers = encode_headers({"x-request-id": "abc-1", "authorization": "Bearer k"})
        response = await client.post(server.url, b"/v1/chat/completions", headers, body)
        assert response.status == 429
        assert response.header(b"content-type") == "application/json"
        assert response.header(b"retry-after") == "3"
        assert response.header(b"x-missing") is None
        assert await response.read() == b'{"busy":1}'
        assert response.complete
        response.release()
    [(head, received)] = server.requests
    port = server.url.rsplit(":", 1)[1]
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert f"host: 127.0.0.1:{port}".encode() in lines
    assert b"content-length: %d" % size in lines
    assert b"x-request-id: abc-1" in lines and b"authorization: Bearer k" in lines
    assert received == body


async def test_released_connection_is_reused_and_a_closed_one_is_not(
    client: UpstreamClient,
) -> None:
    async with Server(keep_alive) as server:
        assert await post(client, server) == b'{"ok":true}'
        assert await post(client, server) == b'{"ok":true}'
        assert (server.connections, len(server.requests)) == (1, 2)
        response = await client.post(server.url, b"/v1/x", b"", b"{}")
        await response.read()
        response.close()
        await post(client, server)
        assert (server.connections, len(server.requests)) == (2, 4)
        await until(lambda: server.eofs == 1)  # close() ended the first connection


async def test_idle_connections_expire_and_the_pool_is_bounded() -> None:
    client = UpstreamClient(connect_timeout=1, read_timeout=2, max_idle=1, keepalive_seconds=0.05)
    try:
        async with Server(keep_alive) as server:
            first, second = await asyncio.gather(
                client.post(server.url, b"/", b"", b""), client.post(server.url, b"/", b"", b"")
            )
            for response in (first, second):
                await response.read()
                response.release()
            assert server.connections == 2
            await until(lambda: server.eofs == 1)  # only one kept idle
            await asyncio.sleep(0.08)  # older than keepalive_seconds: not reused
            await post(client, server)
            assert server.connections == 3
            await until(lambda: server.eofs == 2)
    finally:
        await client.close()


async def test_chunked_stream_is_relayed_piece_by_piece(client: UpstreamClient) -> None:
    pieces = [b'data: {"n":1}\n\n', b'data: {"n":2}\n\n', b"data: [DONE]\n\n"]
    sent_last = False

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        nonlocal sent_last
        await server.request(reader)
        writer.write(CHUNKED_HEAD)
        for piece in pieces:
            writer.write(chunk(piece))
            await server.gate.get()
        sent_last = True
        writer.write(b"0\r\n\r\n")
        await keep_alive(server, reader, writer)

    async with Server(handler) as server:
        response = await client.post(server.url, b"/v1/chat/completions", b"", b"{}")
        assert response.status == 200 and response.header(b"transfer-encoding") == "chunked"
        received = []
        async for data in response.chunks():
            received.append(data)
            if len(received) == 1:
                assert data == pieces[0] and not sent_last and not response.complete
            server.gate.put_nowait(None)
        assert received == pieces and sent_last
        assert response.complete
        response.release()
        assert await post(client, server) == b'{"ok":true}'  # the same connection, reused
        assert server.connections == 1


async def test_connection_the_server_closed_while_idle_is_replaced(
    client: UpstreamClient,
) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(answer())  # keep-alive by HTTP/1.1 default, then closes anyway

    async with Server(handler) as server:
        await post(client, server)
        assert sum(map(len, client._idle.values())) == 1
        await until(lambda: not any(client._idle.values()))  # left the pool on close
        assert await post(client, server) == b'{"ok":true}'
        assert server.connections == 2


async def test_hang_up_before_answering_is_retried_once_on_a_reused_connection_only(
    client: UpstreamClient,
) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        if server.connections < 3:  # the third takes its request and hangs up at once
            writer.write(answer())
        if server.connections == 1:
            await server.request(reader)  # takes the second request and hangs up

    async with Server(handler) as server:
        await post(client, server, b"one")
        response = await client.post(server.url, b"/", b"", b"two")
        assert await response.read() == b'{"ok":true}'  # sent again on a fresh connection
        assert server.connections == 2
        assert [body for _, body in server.requests] == [b"one", b"two", b"two"]
        response.close()
        with pytest.raises(ConnectFailed):  # fresh: not retried
            await client.post(server.url, b"/", b"", b"three")
        assert server.connections == 3 and len(server.requests) == 4


async def test_refused_connection_raises_connect_failed(client: UpstreamClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ConnectFailed) as raised:
        await client.post(f"http://127.0.0.1:{port}", b"/", b"", b"{}")
    assert isinstance(raised.value, UpstreamIOError) and isinstance(raised.value, ConnectionError)


async def test_silent_upstream_times_out_and_is_hung_up_on(
    quick_client: UpstreamClient,
) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        if server.connections == 2:  # the second answers, then stalls mid-stream
            writer.write(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await server.wait_eof(reader)

    async with Server(handler) as server:
        started = time.monotonic()
        with pytest.raises(ReadTimeout) as raised:
            await quick_client.post(server.url, b"/", b"", b"{}")
        assert 0.18 <= time.monotonic() - started < 1.0  # read_timeout is 0.2 s
        assert isinstance(raised.value, TimeoutError)
        await until(lambda: server.eofs == 1)
        assert not quick_client._busy

        response = await quick_client.post(server.url, b"/", b"", b"{}")
        received = []
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            async for data in response.chunks():
                received.append(data)
        assert received == [b"data: 1\n\n"] and 0.18 <= time.monotonic() - started < 1.0
        response.close()
        await until(lambda: server.eofs == 2)


@pytest.mark.parametrize(
    "reply",
    [
        answer(b"0123456789" * 10)[:-90],  # content-length 100, 10 bytes sent
        CHUNKED_HEAD + chunk(b"data: 1\n\n") + b"20\r\nonly part",
    ],
    ids=["content-length", "chunked"],
)
async def test_connection_dropped_mid_body_raises_response_broken(
    client: UpstreamClient, reply: bytes
) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(reply)
        await writer.drain()

    async with Server(handler) as server:
        response = await client.post(server.url, b"/", b"", b"{}")
        with pytest.raises(ResponseBroken):
            await response.read()
        response = await client.post(server.url, b"/", b"", b"{}")
        received = []
        with pytest.raises(ResponseBroken):
            async for data in response.chunks():
                received.append(data)
        assert b"".join(received) in (b"0123456789", b"data: 1\n\nonly part")


async def test_malformed_http_raises_response_broken(client: UpstreamClient) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        if server.connections == 1:
            writer.write(b"SMTP ready\r\n\r\n")
        else:
            writer.write(CHUNKED_HEAD + chunk(b"ok"))
            await server.gate.get()
            writer.write(b"zz\r\nbad\r\n")
        await server.wait_eof(reader)

    async with Server(handler) as server:
        # A byte arrived, so it is not ConnectFailed (which would be retried elsewhere).
        with pytest.raises(ResponseBroken, match="malformed"):
            await client.post(server.url, b"/", b"", b"{}")
        await until(lambda: server.eofs == 1)  # and the connection is dropped

        response = await client.post(server.url, b"/", b"", b"{}")
        assert response.status == 200
        server.gate.put_nowait(None)  # now a bad chunk size
        with pytest.raises(ResponseBroken, match="malformed"):
            await response.read()
        await until(lambda: server.eofs == 2)


def test_encode_headers_writes_wire_lines() -> None:
    assert encode_headers({"a": "1", "x-b": "two words"}) == b"a: 1\r\nx-b: two words\r\n"
    assert encode_headers({}) == b""


@pytest.mark.parametrize(
    "headers",
    [{"x\r": "v"}, {"x\n": "v"}, {"x": "v\r\nhost: evil"}, {"x": "v\n"}, {"x": "\r"}],
)
def test_encode_headers_rejects_cr_and_lf(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        encode_headers(headers)


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\n"],
    ids=["http/1.1", "http/1.0"],
)
async def test_body_delimited_by_close_is_read_whole_and_not_reused(
    client: UpstreamClient, head: bytes
) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(head + b"part one, ")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"part two")
        await writer.drain()

    async with Server(handler) as server:
        assert await post(client, server) == b"part one, part two"
        assert await post(client, server) == b"part one, part two"
        assert server.connections == 2


async def test_connection_close_header_prevents_reuse(client: UpstreamClient) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(answer(extra=b"connection: close\r\n"))
        await server.wait_eof(reader)

    async with Server(handler) as server:
        await post(client, server)
        await until(lambda: server.eofs == 1)  # released, but closed by the client
        await post(client, server)
        assert server.connections == 2


async def test_reading_pauses_while_much_is_unread(client: UpstreamClient) -> None:
    payload = bytes(range(256)) * (8 * 1024)  # 2 MiB

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(CHUNKED_HEAD)
        for start in range(0, len(payload), 64 * 1024):
            writer.write(chunk(payload[start : start + 64 * 1024]))
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with Server(handler) as server:
        response = await client.post(server.url, b"/", b"", b"{}")
        conn = response._conn
        await until(lambda: conn.paused)
        buffered = conn.buffered
        assert _HIGH_WATER < buffered < len(payload)
        await asyncio.sleep(0.05)
        assert conn.buffered == buffered  # nothing more read while paused
        received = [data async for data in response.chunks()]
        assert b"".join(received) == payload
        assert len(received) > 2 and not conn.paused and response.complete


async def test_client_close_aborts_idle_and_busy_connections(client: UpstreamClient) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        if server.connections == 2:
            await keep_alive(server, reader, writer)
        else:
            await server.request(reader)
            writer.write(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
            await server.wait_eof(reader)

    async with Server(handler) as server:
        streaming = await client.post(server.url, b"/", b"", b"{}")  # busy
        await post(client, server)  # a second connection, now idle
        assert server.connections == 2 and client._busy and any(client._idle.values())
        await client.close()
        await until(lambda: server.eofs == 2)
        assert not client._busy and not any(client._idle.values())
        with pytest.raises(ResponseBroken):
            async for _ in streaming.chunks():
                pass


async def test_cancelled_request_closes_its_connection(client: UpstreamClient) -> None:
    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        await server.wait_eof(reader)

    async with Server(handler) as server:
        task = asyncio.create_task(client.post(server.url, b"/", b"", b"{}"))
        await asyncio.sleep(0.05)
        assert len(server.requests) == 1 and server.eofs == 0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: server.eofs == 1)
        assert not client._busy


async def test_a_body_larger_than_the_read_buffer_is_read_in_full() -> None:
    client = UpstreamClient(connect_timeout=1, read_timeout=0.5)
    body = b"x" * (1024 * 1024)  # 4x the high-water mark that pauses reading

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(answer(body))
        await writer.drain()
        await server.wait_eof(reader)

    async with Server(handler) as server:
        response = await client.post(server.url, b"/v1/embeddings", b"", b"{}")
        assert await response.read() == body
    await client.close()


async def test_bytes_arriving_on_an_idle_connection_retire_it() -> None:
    client = UpstreamClient(connect_timeout=1, read_timeout=1)

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(answer(b"first"))
        await asyncio.sleep(0.05)
        writer.write(answer(b"stale", 408))  # unsolicited, connection kept open
        await keep_alive(server, reader, writer)

    async with Server(handler) as server:
        assert await post(client, server) == b"first"
        await asyncio.sleep(0.1)
        response = await client.post(server.url, b"/", b"", b"{}")
        assert response.status == 200  # a fresh connection's answer, not the stale 408
        assert server.connections == 2
    await client.close()


async def test_reset_during_a_close_delimited_body_is_an_error_not_the_end() -> None:
    client = UpstreamClient(connect_timeout=1, read_timeout=1)

    async def handler(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST

    async with Server(handler) as server:
        response = await client.post(server.url, b"/", b"", b"{}")
        with pytest.raises(ResponseBroken):
            await response.read()
    await client.close()
