"""Relaying an upstream answer to the client, counting the tokens it used.

A whole answer is passed on as received (:class:`UpstreamAnswer`); a stream is relayed chunk
by chunk (:class:`StreamRelay`), and ends with an SSE error event if the upstream breaks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import orjson
from starlette.responses import Response

from switchyard_common.errors import UpstreamError
from switchyard_common.sse import EventStreamResponse, error_event
from switchyard_gateway.outcome import Outcome
from switchyard_gateway.slots import SlotLease
from switchyard_gateway.upstream import UpstreamIOError, UpstreamResponse

log = logging.getLogger(__name__)


class UpstreamAnswer(Response):
    """An upstream answer relayed as is: status, body, ``content-type`` and ``Retry-After``
    (the headers are known, so Starlette's header building is skipped)."""

    def __init__(self, upstream: UpstreamResponse, content: bytes) -> None:
        self.status_code = upstream.status
        self.body = content
        self.background = None
        content_type = upstream.raw_header(b"content-type") or b"application/json"
        self.raw_headers = [
            (b"content-length", b"%d" % len(content)),
            (b"content-type", content_type),
        ]
        retry_after = upstream.raw_header(b"retry-after")
        if retry_after:
            self.raw_headers.append((b"retry-after", retry_after))


def count_usage(content: bytes, outcome: Outcome) -> None:
    """Take the token counts of a JSON answer's ``usage``, if it has one."""
    try:
        usage = orjson.loads(content).get("usage") or {}
        outcome.prompt_tokens = int(usage.get("prompt_tokens", 0))
        outcome.completion_tokens = int(usage.get("completion_tokens", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        pass


def _usage_from_chunk(chunk: bytes, outcome: Outcome) -> bool:
    """Take usage from a streamed chunk that carries it; False if it has none."""
    for event in chunk.split(b"\n\n"):
        if b'"usage":{' in event and event.startswith(b"data: "):
            count_usage(event[6:], outcome)
            return True
    return False


class StreamRelay:
    """Relays one upstream SSE stream as received; a broken upstream ends with an SSE error
    event. :meth:`finish` gives back the instance slot and the connection and reports the
    outcome to ``on_end``, exactly once: when the relay ends, or when the response is
    closed without having started it (the client left first)."""

    def __init__(
        self,
        upstream: UpstreamResponse,
        lease: SlotLease,
        instance_url: str,
        outcome: Outcome,
        on_end: Callable[[Outcome], None],
        total_timeout: float,
    ) -> None:
        self.upstream = upstream
        self.lease = lease
        self.instance_url = instance_url
        self.outcome = outcome
        self.on_end = on_end
        self.total_timeout = total_timeout
        self.events_seen = 0
        self.usage_seen = False

    def response(self) -> EventStreamResponse:
        return EventStreamResponse(self.events(), on_close=self.finish)

    async def events(self) -> AsyncIterator[bytes]:
        outcome = self.outcome
        try:
            async with asyncio.timeout(self.total_timeout):
                async for chunk in self.upstream.chunks():
                    if not outcome.first_byte_at:
                        outcome.first_byte_at = time.monotonic()
                    self.events_seen += chunk.count(b"data: ")
                    if b'"usage":{' in chunk:
                        self.usage_seen = _usage_from_chunk(chunk, outcome) or self.usage_seen
                    yield chunk
        except (UpstreamIOError, TimeoutError):
            log.warning("upstream stream broke", extra={"instance": self.instance_url})
            broken = UpstreamError("The model connection broke mid-stream.")
            yield error_event(broken, "Stream relay failed.")
        except Exception as exc:
            log.exception("stream relay failed")
            yield error_event(exc, "Stream relay failed.")
        finally:
            self.finish()

    def finish(self) -> None:
        if not self.lease.held:
            return
        self.lease.release()
        # Closing an unfinished stream drops the upstream connection, which tells the
        # worker to stop generating; a finished one goes back to the pool.
        if self.upstream.complete:
            self.upstream.release()
        else:
            self.upstream.close()
        if not self.usage_seen:
            # The client did not ask for usage: about one token per content event (not
            # counting the role event, the finish event and [DONE]).
            self.outcome.completion_tokens = max(0, self.events_seen - 3)
        self.on_end(self.outcome)
