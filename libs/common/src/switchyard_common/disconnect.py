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


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it as soon as the client disconnects.

    Call only after the request body has been read: the watcher consumes ``receive``.
    """
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                task.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if watcher.done() and task.cancelled():
            raise ClientDisconnectedError("Client disconnected.") from None
        raise
    finally:
        watcher.cancel()
