"""Chat completions in OpenAI's shapes, on top of the engine."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from switchyard_common.errors import InternalError, InvalidRequestError, SwitchyardError
from switchyard_common.openai_schemas import ChatCompletionRequest, new_id, now
from switchyard_common.sse import DONE, sse_event
from switchyard_model_worker.backends.base import Finished, GenerationEvent, GenerationRequest
from switchyard_model_worker.engine import Engine

_ROLE_MAP = {"developer": "system", "function": "tool"}


def to_generation_request(req: ChatCompletionRequest, default_max_tokens: int) -> GenerationRequest:
    if req.n not in (None, 1):
        raise InvalidRequestError("Only n=1 is supported.", param="n", code="unsupported_value")
    if req.tools:
        raise InvalidRequestError(
            "This model backend does not support tools.",
            param="tools",
            code="unsupported_parameter",
        )
    bias: dict[int, float] = {}
    for key, value in (req.logit_bias or {}).items():
        if not key.lstrip("-").isdigit():
            raise InvalidRequestError(
                f"Invalid logit_bias key '{key}': keys are token ids.", param="logit_bias"
            )
        bias[int(key)] = max(-100.0, min(100.0, value))
    messages = [{"role": _ROLE_MAP.get(m.role, m.role), "content": m.text()} for m in req.messages]
    return GenerationRequest(
        max_tokens=req.token_limit() or default_max_tokens,
        messages=messages,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        stop=req.stop_list(),
        seed=req.seed,
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logit_bias=bias,
    )


def _usage(done: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


async def complete(engine: Engine, gen: GenerationRequest) -> dict[str, Any]:
    """Run a generation to the end and build a ``chat.completion`` object."""
    parts: list[str] = []
    done: Finished | None = None
    events = engine.run(gen)
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
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": engine.model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(parts)},
                "finish_reason": done.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(done),
    }


async def open_stream(
    engine: Engine, gen: GenerationRequest, include_usage: bool
) -> AsyncIterator[bytes]:
    """Start generating and wait for the first event before any byte is sent.

    Errors that happen before the first token (overload, prompt too long) therefore still
    become proper HTTP errors; later ones become an SSE ``error`` event.
    """
    events = engine.run(gen)
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return _sse(engine.model_name, first, events, include_usage)


async def _sse(
    model: str,
    first: GenerationEvent,
    events: AsyncGenerator[GenerationEvent, None],
    include_usage: bool,
) -> AsyncIterator[bytes]:
    cid, created = new_id("chatcmpl"), now()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse_event(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }
        )

    try:
        yield chunk({"role": "assistant", "content": ""})
        event: GenerationEvent | None = first
        while event is not None:
            if isinstance(event, Finished):
                yield chunk({}, event.finish_reason)
                if include_usage:
                    yield sse_event(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "choices": [],
                            "usage": _usage(event),
                        }
                    )
                break
            yield chunk({"content": event.text})
            event = await anext(events, None)
        yield DONE
    except Exception as exc:
        # Bytes were already sent: end the stream with a well-formed error event.
        err = exc if isinstance(exc, SwitchyardError) else InternalError("Generation failed.")
        yield sse_event(err.body())
    finally:
        await events.aclose()
