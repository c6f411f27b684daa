"""A raw asyncio HTTP server each test scripts, for the upstream client and the forwarder:
a handler per connection writes exactly the bytes (or the silence) the test needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[["Server", Reader, Writer], Awaitable[None]]


class Server:
    """A TCP server on 127.0.0.1 whose every connection runs ``handler``; counts what it sees."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.eofs = 0  # connections the client closed
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.gate: asyncio.Queue[None] = asyncio.Queue()  # the test lets a handler go on
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[Writer] = []

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: Reader, writer: Writer) -> None:
        self.connections += 1
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self._writers.append(writer)
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client hung up, or the test is over
        finally:
            writer.close()

    async def request(self, reader: Reader) -> bytes | None:
        """The next request's head (its body is recorded too), or None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.eofs += 1
            return None
        length = 0
        for line in head.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.requests.append((head, await reader.readexactly(length)))
        return head

    async def wait_eof(self, reader: Reader) -> None:
        if not await reader.read():
            self.eofs += 1


def answer(body: bytes = b'{"ok":true}', status: int = 200, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
    return head % (status, len(body), extra) + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


async def keep_alive(server: Server, reader: Reader, writer: Writer) -> None:
    while await server.request(reader) is not None:
        writer.write(answer())


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)
