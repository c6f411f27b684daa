"""cancel_on_disconnect and EventStreamResponse: stop work for clients that have gone away;
Readiness checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request
from starlette.types import Message

from switchyard_common.disconnect import ClientDisconnectedError, cancel_on_disconnect
from switchyard_common.readiness import Readiness
from switchyard_common.sse import EventStreamResponse


def make_request(messages: list[Message], *, then_block: bool = True) -> Request:
    """A request whose ``receive`` yields ``messages`` (after a short pause each), then blocks."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            await asyncio.sleep(0.01)
            return queue.pop(0)
        if then_block:
            await asyncio.Event().wait()
        raise AssertionError("receive called too often")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    return Request(scope, receive)


def other_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def test_disconnect_cancels_work_and_raises() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def work() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    request = make_request([{"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnectedError) as info:
        await asyncio.wait_for(cancel_on_disconnect(request, work()), timeout=5)
    assert started.is_set()
    assert cancelled.is_set()
    assert info.value.status_code == 499
    assert info.value.code == "client_disconnected"


async def test_body_messages_are_skipped_until_disconnect() -> None:
    request = make_request(
        [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]
    )
    with pytest.raises(ClientDisconnectedError):
        await asyncio.wait_for(cancel_on_disconnect(request, asyncio.sleep(30)), timeout=5)


async def test_no_disconnect_returns_result_and_cleans_up_watcher() -> None:
    async def work() -> int:
        await asyncio.sleep(0.02)
        return 42

    request = make_request([])
    assert await cancel_on_disconnect(request, work()) == 42
    await asyncio.sleep(0)  # let the cancelled watcher finish
    assert other_tasks() == set()


async def test_work_errors_propagate_unchanged() -> None:
    async def work() -> None:
        raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        await cancel_on_disconnect(make_request([]), work())


async def test_outer_cancellation_is_not_reported_as_disconnect() -> None:
    inner_cancelled = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            inner_cancelled.set()
            raise

    outer = asyncio.create_task(cancel_on_disconnect(make_request([]), work()))
    await asyncio.sleep(0.02)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert inner_cancelled.is_set()


# ------------------------------------------------------------------ readiness


async def test_readiness_all_pass() -> None:
    readiness = Readiness()

    async def ok() -> bool:
        return True

    readiness.add_check("a", ok)
    report = await readiness.report()
    assert report.status == "ready"
    assert report.checks == {"a": True, "accepting": True}


async def test_readiness_timeout_raise_false_and_draining() -> None:
    readiness = Readiness(timeout=0.05)

    async def slow() -> bool:
        await asyncio.sleep(5)
        return True

    async def broken() -> bool:
        raise RuntimeError("nope")

    async def ok() -> bool:
        return True

    readiness.add_check("slow", slow)
    readiness.add_check("broken", broken)
    readiness.add_check("ok", ok)
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await readiness.report()
    assert loop.time() - started < 1.0  # checks run concurrently and are bounded by the timeout
    assert report.status == "not_ready"
    assert report.checks == {"slow": False, "broken": False, "ok": True, "accepting": True}

    drained = Readiness()
    drained.draining = True
    report = await drained.report()
    assert report.status == "not_ready"
    assert report.checks == {"accepting": False}


async def test_event_stream_relays_each_piece_then_ends_the_body() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    request = make_request([])
    await EventStreamResponse(pieces())(request.scope, request.receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"cache-control"] == b"no-cache"
    assert [m.get("body") for m in sent[1:]] == [b"data: 1\n\n", b"data: 2\n\n", b""]
    assert sent[-1]["more_body"] is False
    await asyncio.sleep(0)
    assert other_tasks() == set()


async def test_event_stream_stops_and_closes_its_source_when_the_client_leaves() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data: tick\n\n"
                await asyncio.sleep(0.005)
        finally:
            closed.set()

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    request = make_request([{"type": "http.disconnect"}])  # arrives after ~10 ms
    await asyncio.wait_for(EventStreamResponse(endless())(request.scope, request.receive, send), 5)
    assert closed.is_set()
    assert 1 < len(sent) < 100
    assert all(m.get("more_body", True) for m in sent[1:])  # cut off, never "finished"


async def test_watch_after_makes_no_watcher_for_quick_work_and_still_catches_a_departure() -> None:
    created: list[asyncio.Task[object]] = []

    async def quick() -> int:
        created.extend(other_tasks())
        await asyncio.sleep(0.01)
        created.extend(other_tasks())
        return 7

    assert await cancel_on_disconnect(make_request([]), quick(), watch_after=0.05) == 7
    assert created == []  # finished before the watcher was due: no task at all

    request = make_request([{"type": "http.disconnect"}])
    started = asyncio.get_running_loop().time()
    with pytest.raises(ClientDisconnectedError):
        await asyncio.wait_for(
            cancel_on_disconnect(request, asyncio.sleep(30), watch_after=0.05), timeout=5
        )
    assert asyncio.get_running_loop().time() - started >= 0.05
