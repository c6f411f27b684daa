"""One Responses turn: its context window, a chat completion on the workers through the
gateway's forwarding (retries, breakers, fallbacks, affinity), the Response built from it,
and the finished turn recorded by the session service.

A turn is recorded only once the worker has finished it: a worker failing mid-turn leaves
nothing stored. A streamed turn is recorded before ``response.completed`` is sent, so a
client that chains on it right away finds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import trace
from starlette.responses import Response

from switchyard_common.errors import UpstreamError, json_response
from switchyard_common.sse import EventStreamResponse
from switchyard_common.telemetry import record_genai
from switchyard_gateway.forwarding import Forwarder
from switchyard_gateway.keys import ApiKey
from switchyard_gateway.outcome import Outcome
from switchyard_gateway.responses.events import Event, EventWriter, sse
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


@dataclass
class Started:
    """A turn whose chat completion the worker has begun to answer."""

    turn: TurnRequest
    key: ApiKey
    window: Window
    response: TurnResponse
    upstream: Response
    idempotency_key: str | None


def release(started: Started) -> None:
    """Let go of a started turn's worker stream: its instance slot, and its connection
    (dropped if unfinished, which stops the generation). Safe to call more than once."""
    upstream = started.upstream
    if isinstance(upstream, EventStreamResponse) and upstream.on_close is not None:
        upstream.on_close()


def _trace(started: Started, result: TurnResult) -> None:
    """GenAI attributes on the request's span (only a sampled one: unsampled pays nothing)."""
    span = trace.get_current_span()
    if span.is_recording():
        record_genai(
            span, "responses", request_model=started.turn.model,
            response_model=started.response.model, input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            finish_reasons=[result.finish_reason] if result.finish_reason else (),
        )  # fmt: skip


async def _as_sse(events: AsyncGenerator[Event, None]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield sse(event)
    finally:
        await events.aclose()


class Turns:
    """Runs turns; the gateway's lifespan owns it (``sessions`` None: stateless only)."""

    def __init__(
        self,
        forwarder: Forwarder,
        sessions: SessionClient | None,
        tokenizer: Tokenizer,
        account: Callable[[ApiKey, str, int, int], None],
        truncated: Callable[[str, int], None],
    ) -> None:
        self.forwarder = forwarder
        self.sessions = sessions
        self.tokenizer = tokenizer
        self.account = account  # usage, token metrics and the key's token budget
        self.truncated = truncated  # told of each truncated context (model, items left out)

    async def run(self, turn: TurnRequest, key: ApiKey, idempotency_key: str | None) -> Response:
        """One turn over HTTP: the Response JSON, or its events as SSE."""
        started = await self.start(turn, key, idempotency_key)
        if isinstance(started.upstream, EventStreamResponse):
            # Closed before it started (the client left at once), the stream is let go too.
            return EventStreamResponse(
                _as_sse(self.events(started)), on_close=lambda: release(started)
            )
        return json_response(await self.complete(started))

    async def start(
        self,
        turn: TurnRequest,
        key: ApiKey,
        idempotency_key: str | None,
        response: TurnResponse | None = None,
    ) -> Started:
        """Build the context window and send the chat completion (for ``response``: a
        queued one's); errors (unknown ids, context too long, workers busy) are raised
        before anything is answered."""
        if turn.stateful and self.sessions is None:
            raise SessionUnavailableError()
        model = self.forwarder.resolve(turn.model)
        window = await build_window(turn, model, key.tenant, self.sessions, self.tokenizer)
        if window.dropped:
            self.truncated(model, window.dropped)
        body = _chat_body(turn, model, window)
        response = response or TurnResponse(turn, model)
        outcome = Outcome()
        # A chain's affinity is its first response: a first turn routes on its own id. The
        # counts this turn made are cached meanwhile, off the turn's path.
        answer, _ = await asyncio.gather(
            self.forwarder.forward(
                CHAT_PATH, orjson.dumps(body), body, model=model, tenant=key.tenant,
                affinity=window.affinity or response.id, outcome=outcome,
                on_stream_end=lambda _: None,
            ),
            self._cache_counts(key.tenant, model, window.counts),
        )  # fmt: skip
        if answer.status_code != 200:
            raise _relayed(answer)
        response.model = outcome.model or model
        return Started(turn, key, window, response, answer, idempotency_key)

    async def complete(self, started: Started) -> dict[str, Any]:
        """A whole answer: the final Response, recorded."""
        completion = orjson.loads(bytes(started.upstream.body))
        choice = completion["choices"][0]
        usage = completion.get("usage") or {}
        result = TurnResult(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason"),
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
        )
        self._account(started, result)
        _trace(started, result)
        final = started.response.body(status_of(result), result)
        return await self._record(started, final)

    async def _cache_counts(self, tenant: str, model: str, counts: dict[int, int]) -> None:
        """Cache token counts of earlier items with the session service; a cache, so a
        failure only means counting them again next time."""
        if self.sessions is None or not counts:
            return
        try:
            await self.sessions.write_token_counts(tenant, model, counts)
        except (SessionUnavailableError, RelayedError) as exc:
            log.warning("token counts not cached: %s", exc)

    def _account(self, started: Started, result: TurnResult) -> None:
        model = started.response.model
        self.account(started.key, model, result.input_tokens, result.output_tokens)

    async def _record(self, started: Started, final: dict[str, Any]) -> dict[str, Any]:
        """Record the finished turn; returns the response to answer (with an Idempotency-Key
        already used: the first one)."""
        turn = started.turn
        if self.sessions is None or not (turn.store or turn.conversation):
            return final
        return await self.sessions.record_turn(
            started.key.tenant, final, turn.input_items, store=turn.store,
            tokens=started.window.input_tokens, idempotency_key=started.idempotency_key,
        )  # fmt: skip

    async def events(self, started: Started) -> AsyncGenerator[Event, None]:
        """A streamed answer as the Responses events; closing it early (the client left)
        drops the worker's stream, which stops the generation and frees its slot."""
        upstream = started.upstream
        assert isinstance(upstream, EventStreamResponse)
        writer = EventWriter(started.response)
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
            self._account(started, result)
            _trace(started, result)
            closing, final = writer.closing(result)
            await self._record(started, final)
            for event in closing:
                yield event
        except (UpstreamError, SessionUnavailableError, RelayedError) as exc:
            log.warning("streamed turn failed: %s", exc)
            yield writer.failed(str(exc))
        finally:
            aclose = getattr(upstream.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()
            release(started)
