"""Stop work for clients that have gone away."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from switchyard_common.errors import SwitchyardError

T = TypeVar("T")


class ClientDisconnectedError(SwitchyardError):
    """The client closed the connection before the response was ready (nginx's 499)."""

    status_code = 499
    error_type = "invalid_request_error"
    default_code = "client_disconnected"


async def cancel_on_disconnect(
    request: Request, work: Awaitable[T], *, watch_after: float = 0.0
) -> T:
    """Await ``work`` in the calling task, cancelling it as soon as the client disconnects.

    One watcher task waits on ``receive``; on ``http.disconnect`` it cancels the calling task,
    and the cancellation becomes :class:`ClientDisconnectedError`. With ``watch_after`` the
    watcher starts only once the work has run that long (a timer instead of a task for work
    that is over sooner: a client gone within ``watch_after`` is noticed at that point).
    Call only after the request body has been read: the watcher consumes ``receive``.
    """
    current = asyncio.current_task()
    if current is None:
        raise RuntimeError("cancel_on_disconnect must run inside a task")
    disconnected = False
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        nonlocal disconnected
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                current.cancel()
                return

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.create_task(watch())

    timer = None
    if watch_after > 0:
        timer = asyncio.get_running_loop().call_later(watch_after, start_watching)
    else:
        start_watching()
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected and current.uncancel() == 0:
            raise ClientDisconnectedError("Client disconnected.") from None
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if watcher is not None:
            watcher.cancel()
