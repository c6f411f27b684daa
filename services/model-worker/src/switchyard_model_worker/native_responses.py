"""OpenAI response shapes (chat and text completions) built from native generation events."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response

from switchyard_common.disconnect import cancel_on_disconnect
from switchyard_common.errors import json_response
from switchyard_common.sse import DONE, EventStreamResponse, error_event, sse_event
from switchyard_model_worker.backends.base import Finished, GenerationEvent, GenerationRequest
from switchyard_model_worker.model_runner import ModelRunner


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Shape:
    chat: bool

    @property
    def id_prefix(self) -> str:
        return "chatcmpl" if self.chat else "cmpl"

    @property
    def whole_object(self) -> str:
        return "chat.completion" if self.chat else "text_completion"

    @property
    def chunk_object(self) -> str:
        return "chat.completion.chunk" if self.chat else "text_completion"

    def whole_choice(self, text: str, finish: str) -> dict[str, Any]:
        if self.chat:
            body: dict[str, Any] = {"message": {"role": "assistant", "content": text}}
        else:
            body = {"text": text}
        return {"index": 0, **body, "finish_reason": finish, "logprobs": None}

    def chunk_choice(
        self, text: str | None, finish: str | None = None, *, first: bool = False
    ) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant", "content": ""} if first else {}
            if text is not None:
                delta["content"] = text
            body: dict[str, Any] = {"delta": delta}
        else:
            body = {"text": text or ""}
        return {"index": 0, **body, "finish_reason": finish, "logprobs": None}


CHAT = Shape(chat=True)
TEXT = Shape(chat=False)


def usage(done: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


async def respond(
    request: Request,
    runner: ModelRunner,
    gen: GenerationRequest,
    shape: Shape,
    *,
    stream: bool,
    include_usage: bool,
    prefix: str = "",
) -> Response:
    """Serve a generation as SSE or as one JSON object; a departed client cancels it."""
    if stream:
        events = open_stream(runner, gen, shape, include_usage, prefix)
        return EventStreamResponse(await cancel_on_disconnect(request, events))
    whole = await cancel_on_disconnect(request, complete(runner, gen, shape, prefix))
    return json_response(whole)


async def complete(
    runner: ModelRunner, gen: GenerationRequest, shape: Shape, prefix: str = ""
) -> dict[str, Any]:
    """Run a generation to the end and build the whole response object."""
    parts: list[str] = [prefix]
    done: Finished | None = None
    events = runner.generate(gen)
    try:
        async for event in events:
            if isinstance(event, Finished):
                done = event
            else:
                parts.append(event.text)
    finally:
        await events.aclose()
    assert done is not None
    return {
        "id": new_id(shape.id_prefix),
        "object": shape.whole_object,
        "created": now(),
        "model": runner.model_name,
        "choices": [shape.whole_choice("".join(parts), done.finish_reason)],
        "usage": usage(done),
    }


async def open_stream(
    runner: ModelRunner, gen: GenerationRequest, shape: Shape, include_usage: bool, prefix: str = ""
) -> AsyncIterator[bytes]:
    """Start generating and wait for the first event before any byte is sent.

    Errors that happen before the first token (overload, prompt too long) therefore still
    become proper HTTP errors; later ones become an SSE ``error`` event.
    """
    events = runner.generate(gen)
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return _sse(runner.model_name, shape, first, events, include_usage, prefix)


async def _sse(
    model: str,
    shape: Shape,
    first: GenerationEvent,
    events: AsyncGenerator[GenerationEvent, None],
    include_usage: bool,
    prefix: str,
) -> AsyncIterator[bytes]:
    cid, created = new_id(shape.id_prefix), now()

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse_event(
            {
                "id": cid,
                "object": shape.chunk_object,
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
        )

    try:
        if shape.chat:
            yield chunk([shape.chunk_choice(None, first=True)])
        if prefix:
            yield chunk([shape.chunk_choice(prefix)])
        event: GenerationEvent | None = first
        while event is not None:
            if isinstance(event, Finished):
                yield chunk([shape.chunk_choice(None, event.finish_reason)])
                if include_usage:
                    yield chunk([], usage=usage(event))
                break
            yield chunk([shape.chunk_choice(event.text)])
            event = await anext(events, None)
        yield DONE
    except Exception as exc:
        # Bytes were already sent: end the stream with a well-formed error event.
        yield error_event(exc, "Generation failed.")
    finally:
        await events.aclose()
