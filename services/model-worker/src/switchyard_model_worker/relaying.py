"""HTTP responses for relayed requests: the engine's JSON, or its stream chunk by chunk."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi import Request
from starlette.responses import Response

from switchyard_common.disconnect import cancel_on_disconnect
from switchyard_common.errors import json_response
from switchyard_common.sse import DONE, EventStreamResponse, error_event, sse_event
from switchyard_model_worker.backends.base import RelayCall, RelayChunk, RelayEvent, RelayResponse
from switchyard_model_worker.model_runner import ModelRunner


def relay_call(path: str, body: Any) -> RelayCall:
    """The client's body as it came (unknown fields kept), minus what was left unset."""
    raw = body.model_dump(exclude_unset=True)
    return RelayCall(path=path, body=raw, stream=bool(raw.get("stream")))


async def respond(request: Request, runner: ModelRunner, call: RelayCall) -> Response:
    if call.stream:
        stream = await cancel_on_disconnect(request, _open(runner.relay(call)))
        return EventStreamResponse(stream)
    whole = await cancel_on_disconnect(request, _whole(runner.relay(call)))
    return json_response(whole.payload, whole.status_code)


async def _whole(events: AsyncGenerator[RelayEvent, None]) -> RelayResponse:
    try:
        event = await anext(events)
    finally:
        await events.aclose()
    assert isinstance(event, RelayResponse)
    return event


async def _open(events: AsyncGenerator[RelayEvent, None]) -> AsyncIterator[bytes]:
    """Wait for the engine's first chunk, so errors before it are still HTTP errors."""
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return _sse(first, events)


async def _sse(first: RelayEvent, events: AsyncGenerator[RelayEvent, None]) -> AsyncIterator[bytes]:
    try:
        event: RelayEvent | None = first
        while event is not None:
            assert isinstance(event, RelayChunk)
            yield sse_event(event.payload)
            event = await anext(events, None)
        yield DONE
    except Exception as exc:
        yield error_event(exc, "Generation failed.")
    finally:
        await events.aclose()
