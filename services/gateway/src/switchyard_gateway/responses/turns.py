"""One Responses turn: its context window, a chat completion on the workers through the
gateway's forwarding (retries, breakers, fallbacks, affinity), the Response built from it,
and the finished turn recorded by the session service.

A turn is recorded only once the worker has finished it: a worker failing mid-turn leaves
nothing stored. A streamed turn is recorded before ``response.completed`` is sent, so a
client that chains on it right away finds it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.responses import Response

from switchyard_common.errors import UpstreamError, json_response
from switchyard_common.sse import EventStreamResponse
from switchyard_gateway.forwarding import Forwarder
from switchyard_gateway.keys import ApiKey
from switchyard_gateway.outcome import Outcome
from switchyard_gateway.responses.events import EventWriter
from switchyard_gateway.responses.objects import TurnResponse, TurnResult, status_of
from switchyard_gateway.responses.request import TurnRequest
from switchyard_gateway.responses.window import Tokenizer, Window, build_window
from switchyard_gateway.session_client import (
    RelayedError,
    SessionClient,
    SessionUnavailableError,
)

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"


def _chat_body(turn: TurnRequest, model: str, window: Window) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": window.messages}
    if turn.max_output_tokens is not None:
        body["max_tokens"] = turn.max_output_tokens
    if turn.temperature is not None:
        body["temperature"] = turn.temperature
    if turn.top_p is not None:
        body["top_p"] = turn.top_p
    if turn.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _relayed(response: Response) -> RelayedError:
    """A worker's error answer (4xx, or 429/503 when all were busy), passed on."""
    try:
        body = orjson.loads(bytes(response.body))
    except orjson.JSONDecodeError:
        body = {}
    error = RelayedError(response.status_code, body)
    retry_after = response.headers.get("retry-after")
    if retry_after:
        error.headers["retry-after"] = retry_after
    return error


def _sse_payloads(buffer: bytearray, chunk: bytes) -> list[Any]:
    """The JSON payloads of the complete ``data:`` events in ``buffer + chunk``."""
    buffer.extend(chunk)
    payloads = []
    while (end := buffer.find(b"\n\n")) >= 0:
        event = bytes(buffer[:end])
        del buffer[: end + 2]
        for line in event.split(b"\n"):
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                payloads.append(orjson.loads(line[6:]))
    return payloads


class Turns:
    """Runs turns; the gateway's lifespan owns it (``sessions`` None: stateless only)."""

    def __init__(
        self,
        forwarder: Forwarder,
        sessions: SessionClient | None,
        tokenizer: Tokenizer,
        charge: Callable[[ApiKey, int], None],
    ) -> None:
        self.forwarder = forwarder
        self.sessions = sessions
        self.tokenizer = tokenizer
        self.charge = charge

    async def run(self, turn: TurnRequest, key: ApiKey, idempotency_key: str | None) -> Response:
        if turn.stateful and self.sessions is None:
            raise SessionUnavailableError()
        model = self.forwarder.resolve(turn.model)
        window = await build_window(turn, model, key.tenant, self.sessions, self.tokenizer)
        body = _chat_body(turn, model, window)
        outcome = Outcome()
        answer = await self.forwarder.forward(
            CHAT_PATH, orjson.dumps(body), body, model=model, tenant=key.tenant,
            affinity=window.affinity, outcome=outcome, on_stream_end=lambda _: None,
        )  # fmt: skip
        if answer.status_code != 200:
            raise _relayed(answer)
        response = TurnResponse(turn, outcome.model or model)
        if isinstance(answer, EventStreamResponse):
            return EventStreamResponse(
                self._stream(turn, key, window, response, answer, idempotency_key)
            )
        completion = orjson.loads(bytes(answer.body))
        choice = completion["choices"][0]
        usage = completion.get("usage") or {}
        result = TurnResult(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason"),
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
        )
        self.charge(key, result.input_tokens + result.output_tokens)
        final = response.body(status_of(result), result)
        final = await self._record(turn, key, window, final, idempotency_key)
        return json_response(final)

    async def _record(
        self,
        turn: TurnRequest,
        key: ApiKey,
        window: Window,
        final: dict[str, Any],
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        """Record the finished turn; returns the response to answer (with an Idempotency-Key
        already used: the first one)."""
        if self.sessions is None or not (turn.store or turn.conversation):
            return final
        return await self.sessions.record_turn(
            key.tenant, final, turn.input_items, store=turn.store, tokens=window.input_tokens,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    async def _stream(
        self,
        turn: TurnRequest,
        key: ApiKey,
        window: Window,
        response: TurnResponse,
        upstream: EventStreamResponse,
        idempotency_key: str | None,
    ) -> AsyncIterator[bytes]:
        writer = EventWriter(response)
        result = TurnResult()
        text: list[str] = []
        buffer = bytearray()
        try:
            for event in writer.opening():
                yield event
            async for chunk in upstream.body_iterator:
                for payload in _sse_payloads(buffer, chunk):
                    if "error" in payload:
                        raise UpstreamError(str(payload["error"].get("message", "failed")))
                    usage = payload.get("usage")
                    if usage:
                        result.input_tokens = int(usage.get("prompt_tokens", 0))
                        result.output_tokens = int(usage.get("completion_tokens", 0))
                    for choice in payload.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            text.append(delta)
                            yield writer.delta(delta)
                        if choice.get("finish_reason"):
                            result.finish_reason = choice["finish_reason"]
            result.text = "".join(text)
            self.charge(key, result.input_tokens + result.output_tokens)
            closing, final = writer.closing(result)
            await self._record(turn, key, window, final, idempotency_key)
            for event in closing:
                yield event
        except (UpstreamError, SessionUnavailableError, RelayedError) as exc:
            log.warning("streamed turn failed: %s", exc)
            yield writer.failed(str(exc))
        finally:
            aclose = getattr(upstream.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            if upstream.on_close is not None:
                upstream.on_close()
