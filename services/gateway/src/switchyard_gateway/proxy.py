"""Forwarding to model-worker instances: retries, breakers, fallbacks, streaming relay.

The hot path never builds pydantic models: the body is parsed once with orjson to find what
routing needs, then forwarded as the original bytes. Streams are relayed chunk by chunk.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pybreaker
from starlette.responses import Response, StreamingResponse

from switchyard_common.context import REQUEST_ID_HEADER, request_id_var
from switchyard_common.errors import (
    InternalError,
    InvalidRequestError,
    ModelNotFoundError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from switchyard_common.sse import SSE_HEADERS, sse_event
from switchyard_common.telemetry import inject_trace_headers
from switchyard_gateway.breakers import UpstreamFailure
from switchyard_gateway.policies import RoutingPolicy
from switchyard_gateway.pool import InstancePool, InstanceState

log = logging.getLogger(__name__)

_PASS_RESPONSE_HEADERS = ("retry-after",)
_BREAKER_FAILURE_STATUSES = frozenset({500, 502, 504})
_BUSY_STATUSES = frozenset({429, 503})


def parse_body(raw: bytes, required: tuple[str, ...]) -> dict[str, Any]:
    """Parse a JSON object body and check the fields routing needs; OpenAI-style 400s."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"We could not parse the JSON body of your request. ({exc})", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    for name in required:
        if name not in body:
            raise InvalidRequestError(
                f"Missing required parameter: '{name}'.",
                param=name,
                code="missing_required_parameter",
            )
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequestError("'model' must be a non-empty string.", param="model")
    return body


@dataclass
class Outcome:
    """What happened upstream, for metrics and token accounting."""

    model: str = ""
    upstream_seconds: float = 0.0
    first_byte_at: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: list[str] = field(default_factory=list)


@dataclass
class _Busy:
    response: aiohttp.ClientResponse
    content: bytes


# Before any response byte: the instance could not be reached or dropped the connection.
_CONNECT_ERRORS = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    asyncio.TimeoutError,
)


class Forwarder:
    def __init__(
        self,
        pool: InstancePool,
        policy: RoutingPolicy,
        session: aiohttp.ClientSession,
        *,
        timeout: aiohttp.ClientTimeout,
        total_timeout: float,
        max_attempts: int,
        backoff_base: float,
        backoff_max: float,
        retry_deadline: float,
        aliases: dict[str, str],
        fallbacks: dict[str, list[str]],
    ) -> None:
        self.pool = pool
        self.policy = policy
        self.session = session
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_deadline = retry_deadline
        self.aliases = aliases
        self.fallbacks = fallbacks

    def resolve(self, model: str) -> str:
        return self.aliases.get(model, model)

    def _headers(self, tenant: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "x-switchyard-tenant": tenant}
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        inject_trace_headers(headers)
        return headers

    async def _targets(self, model: str, affinity: str | None) -> list[InstanceState]:
        found = self.pool.serving(model)
        if not found:
            # Maybe a worker just came up or changed models: look again before saying no.
            await self.pool.refresh_if_stale()
            found = self.pool.serving(model)
        ordered = self.policy.order(found, affinity, self.pool.members(model))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "routing",
                extra={"order": [(s.instance.id, s.load) for s in ordered], "model": model},
            )
        return ordered

    async def forward(
        self,
        path: str,
        raw: bytes,
        body: dict[str, Any],
        *,
        tenant: str,
        affinity: str | None,
        outcome: Outcome,
        on_stream_end: Callable[[Outcome], None],
    ) -> Response:
        started = time.monotonic()
        deadline = started + self.retry_deadline
        requested = self.resolve(body["model"])
        chain = [requested, *self.fallbacks.get(requested, [])]
        headers = self._headers(tenant)
        stream = body.get("stream") is True
        attempts = 0
        busy: _Busy | None = None
        last_error: Exception | None = None
        known = False
        for model in chain:
            known = known or bool(self.pool.members(model))
            payload = raw
            if model != body["model"]:
                payload = orjson.dumps({**body, "model": model})
            for state in await self._targets(model, affinity):
                if attempts >= self.max_attempts:
                    break
                if attempts:
                    delay = min(self.backoff_max, self.backoff_base * 2 ** (attempts - 1))
                    delay *= random.uniform(0.5, 1.0)
                    if time.monotonic() + delay > deadline:
                        break
                    await asyncio.sleep(delay)
                attempts += 1
                outcome.model = model
                try:
                    result = await self._attempt(state, path, payload, headers, stream, outcome)
                except pybreaker.CircuitBreakerError:
                    attempts -= 1  # never sent: the breaker opened meanwhile
                    continue
                except (UpstreamFailure, *_CONNECT_ERRORS) as exc:
                    last_error = exc
                    outcome.retries.append("upstream_error")
                    continue
                if isinstance(result, _Busy):
                    busy = result
                    outcome.retries.append("busy")
                    continue
                if isinstance(result, aiohttp.ClientResponse):
                    return self._stream_response(result, state, outcome, on_stream_end)
                return result
        if busy is not None:
            # Every instance was full: pass the last answer (429/503 + Retry-After) on.
            return _plain_response(busy.response, busy.content)
        if not known:
            raise ModelNotFoundError(body["model"])
        if isinstance(last_error, asyncio.TimeoutError):
            raise UpstreamTimeoutError("The model did not answer in time.") from last_error
        raise ServiceUnavailableError(
            f"No instance serving '{requested}' could answer; retry shortly.",
            headers={"retry-after": "1"},
        ) from last_error

    async def _attempt(
        self,
        state: InstanceState,
        path: str,
        payload: bytes,
        headers: dict[str, str],
        stream: bool,
        outcome: Outcome,
    ) -> Response | aiohttp.ClientResponse | _Busy:
        sent_at = time.monotonic()
        state.in_flight += 1
        release = True
        try:
            with state.breaker.attempt():
                upstream = await self.session.post(
                    f"{state.instance.url}{path}", data=payload, headers=headers,
                    timeout=self.timeout,
                )  # fmt: skip
                if upstream.status in _BREAKER_FAILURE_STATUSES:
                    upstream.close()
                    raise UpstreamFailure(f"{state.instance.url} answered {upstream.status}")
            if upstream.status in _BUSY_STATUSES:
                content = await upstream.read()
                upstream.release()
                return _Busy(upstream, content)
            if stream and upstream.status == 200:
                release = False  # the relay releases the slot when the stream ends
                outcome.upstream_seconds = time.monotonic() - sent_at
                return upstream
            try:
                async with asyncio.timeout(self.total_timeout):
                    content = await upstream.read()
            except TimeoutError as exc:
                raise UpstreamTimeoutError("The model did not finish in time.") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamError("The model connection failed mid-response.") from exc
            finally:
                # Unread (client gone, timeout, error): drop the connection so the worker
                # stops generating. Read in full: the connection goes back to the pool.
                upstream.release() if upstream.content.at_eof() else upstream.close()
            outcome.upstream_seconds = time.monotonic() - sent_at
            if upstream.status == 200:
                _count_usage(content, outcome)
            return _plain_response(upstream, content)
        finally:
            if release:
                state.in_flight -= 1

    def _stream_response(
        self,
        upstream: aiohttp.ClientResponse,
        state: InstanceState,
        outcome: Outcome,
        on_end: Callable[[Outcome], None],
    ) -> StreamingResponse:
        return StreamingResponse(
            _relay(upstream, state, outcome, on_end, self.total_timeout),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )


def _plain_response(upstream: aiohttp.ClientResponse, content: bytes) -> Response:
    passed = {k: v for k in _PASS_RESPONSE_HEADERS if (v := upstream.headers.get(k))}
    return Response(
        content,
        status_code=upstream.status,
        media_type=upstream.headers.get("content-type", "application/json"),
        headers=passed,
    )


def _count_usage(content: bytes, outcome: Outcome) -> None:
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
            _count_usage(event[6:], outcome)
            return True
    return False


async def _relay(
    upstream: aiohttp.ClientResponse,
    state: InstanceState,
    outcome: Outcome,
    on_end: Callable[[Outcome], None],
    total_timeout: float,
) -> AsyncIterator[bytes]:
    """Relay SSE bytes as received; a broken upstream ends with an SSE error event."""
    usage_seen = False
    chunks = 0
    try:
        async with asyncio.timeout(total_timeout):
            async for chunk in upstream.content.iter_any():
                if not outcome.first_byte_at:
                    outcome.first_byte_at = time.monotonic()
                chunks += 1
                if b'"usage":{' in chunk:
                    usage_seen = _usage_from_chunk(chunk, outcome) or usage_seen
                yield chunk
    except (aiohttp.ClientError, TimeoutError):
        log.warning("upstream stream broke", extra={"instance": state.instance.url})
        yield sse_event(UpstreamError("The model connection broke mid-stream.").body())
    except Exception:
        log.exception("stream relay failed")
        yield sse_event(InternalError("Stream relay failed.").body())
    finally:
        state.in_flight -= 1
        # Closing an unfinished stream drops the upstream connection, which tells the
        # worker to stop generating; a finished one goes back to the pool.
        if upstream.content.at_eof():
            upstream.release()
        else:
            upstream.close()
        if not usage_seen:
            # The client did not ask for usage: about one token per content chunk.
            outcome.completion_tokens = max(0, chunks - 3)
        on_end(outcome)
