"""Server-Sent Events framing in OpenAI's streaming format."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from switchyard_common.disconnect import ClientDisconnectedError, cancel_on_disconnect
from switchyard_common.errors import InternalError, SwitchyardError

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse_event(payload: Any) -> bytes:
    """One ``data:`` event holding ``payload`` as compact JSON."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_event(exc: Exception, fallback: str) -> bytes:
    """The last event of a stream that failed after bytes were sent: the typed error's
    OpenAI error JSON, or an internal error saying ``fallback`` for anything else."""
    err = exc if isinstance(exc, SwitchyardError) else InternalError(fallback)
    return sse_event(err.body())


class EventStreamResponse(Response):
    """An SSE response relayed from an async iterator of bytes, each piece sent as it comes.

    Starlette's ``StreamingResponse`` watches for a departed client with an anyio task group
    per response on ASGI servers below spec 2.4 (uvicorn included), which costs more than
    relaying a short stream. Here the stream runs in the request's own task with one watcher
    (:func:`cancel_on_disconnect`): when the client goes, the iterator is cancelled and
    closed, so its ``finally`` blocks run (e.g. dropping the upstream connection).
    ``on_close`` runs once the response is over, however it ended (even if the iterator
    never started).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterator[bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.body_iterator = content
        self.on_close = on_close
        self.status_code = status_code
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        try:
            await send({**start, "headers": self.raw_headers})
            await cancel_on_disconnect(Request(scope, receive), self._relay(send))
        except ClientDisconnectedError:
            pass  # nobody left to tell
        finally:
            try:
                aclose = getattr(self.body_iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                if self.on_close is not None:
                    self.on_close()

    async def _relay(self, send: Send) -> None:
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
