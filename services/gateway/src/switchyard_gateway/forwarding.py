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

import orjson
import pybreaker
from starlette.responses import Response

from switchyard_common.context import REQUEST_ID_HEADER, request_id_var
from switchyard_common.errors import (
    InternalError,
    ModelNotFoundError,
    OverloadedError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from switchyard_common.sse import EventStreamResponse, sse_event
from switchyard_common.telemetry import trace_headers
from switchyard_gateway.breakers import UpstreamFailure
from switchyard_gateway.policies import RoutingPolicy
from switchyard_gateway.pool import InstancePool, InstanceState
from switchyard_gateway.upstream import (
    UpstreamClient,
    UpstreamIOError,
    UpstreamResponse,
    encode_headers,
)

log = logging.getLogger(__name__)

_TENANT = "x-switchyard-tenant"


class InstancesBusyError(OverloadedError):
    """Every instance of the model is at this gateway's per-instance in-flight bound."""

    default_code = "instances_at_capacity"


_BREAKER_FAILURE_STATUSES = frozenset({500, 502, 504})
_BUSY_STATUSES = frozenset({429, 503})


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
    response: UpstreamResponse
    content: bytes


class Forwarder:
    def __init__(
        self,
        pool: InstancePool,
        policy: RoutingPolicy,
        client: UpstreamClient,
        *,
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
        self.client = client
        self._fixed_headers: dict[str, bytes] = {}
        self.total_timeout = total_timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_deadline = retry_deadline
        self.aliases = aliases
        self.fallbacks = fallbacks

    def resolve(self, model: str) -> str:
        return self.aliases.get(model, model)

    def _headers(self, tenant: str) -> bytes:
        """Upstream request headers as wire bytes; the per-tenant part is encoded once."""
        fixed = self._fixed_headers.get(tenant)
        if fixed is None:
            fixed = encode_headers({"content-type": "application/json", _TENANT: tenant})
            if len(self._fixed_headers) < 10_000:
                self._fixed_headers[tenant] = fixed
        # Request ids are validated on the way in and trace headers are formatted by us
        # (hex, or a tracestate OpenTelemetry has parsed): no CR/LF check needed.
        request_id = request_id_var.get()
        lines = [f"{REQUEST_ID_HEADER}: {request_id}\r\n"] if request_id else []
        lines.extend(f"{name}: {value}\r\n" for name, value in trace_headers())
        return fixed + "".join(lines).encode("latin-1")

    async def _targets(self, model: str, affinity: str | None) -> tuple[list[InstanceState], bool]:
        """Instances to try, in order, and whether some were skipped as full."""
        found = self.pool.serving(model)
        if not found:
            # Maybe a worker just came up or changed models: look again before saying no.
            await self.pool.refresh_if_stale()
            found = self.pool.serving(model)
        # The per-instance bound: instances with that many of our requests get no more.
        free = [s for s in found if s.in_flight < self.policy.per_instance_limit]
        if found and not free:
            return [], True
        members = self.pool.members(model) if affinity is not None else free
        ordered = self.policy.order(free, affinity, members)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "routing",
                extra={"order": [(s.instance.id, s.load) for s in ordered], "model": model},
            )
        return ordered, False

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
        saturated = False
        for model in chain:
            known = known or self.pool.knows(model)
            payload = raw
            if model != body["model"]:
                payload = orjson.dumps({**body, "model": model})
            targets, full = await self._targets(model, affinity)
            saturated = saturated or full
            tried = 0  # each model of the chain gets max_attempts (within one deadline)
            for state in targets:
                if tried >= self.max_attempts:
                    break
                if attempts:
                    delay = min(self.backoff_max, self.backoff_base * 2 ** (attempts - 1))
                    delay *= random.uniform(0.5, 1.0)
                    if time.monotonic() + delay > deadline:
                        break
                    await asyncio.sleep(delay)
                attempts += 1
                tried += 1
                outcome.model = model
                try:
                    result = await self._attempt(state, path, payload, headers, stream, outcome)
                except pybreaker.CircuitBreakerError:
                    attempts -= 1  # never sent: the breaker opened meanwhile
                    tried -= 1
                    continue
                except (UpstreamFailure, UpstreamIOError) as exc:
                    last_error = exc
                    outcome.retries.append("upstream_error")
                    continue
                if isinstance(result, _Busy):
                    busy = result
                    outcome.retries.append("busy")
                    continue
                if isinstance(result, UpstreamResponse):
                    return self._stream_response(result, state, outcome, on_stream_end)
                return result
        if outcome.retries:
            outcome.retries.pop()  # the last failed attempt was not followed by a retry
        if busy is not None:
            # Every instance was full: pass the last answer (429/503 + Retry-After) on.
            return _Answer(busy.response, busy.content)
        if not known:
            raise ModelNotFoundError(body["model"])
        if saturated and last_error is None:
            raise InstancesBusyError(
                f"Every instance serving '{requested}' is at capacity; retry shortly.",
                retry_after=1,
            )
        if isinstance(last_error, TimeoutError):
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
        headers: bytes,
        stream: bool,
        outcome: Outcome,
    ) -> Response | UpstreamResponse | _Busy:
        sent_at = time.monotonic()
        state.in_flight += 1
        release = True
        try:
            with state.breaker.attempt():
                upstream = await self.client.post(
                    state.instance.url, path.encode(), headers, payload
                )
                if upstream.status in _BREAKER_FAILURE_STATUSES:
                    upstream.close()
                    raise UpstreamFailure(f"{state.instance.url} answered {upstream.status}")
            if upstream.status in _BUSY_STATUSES:
                return _Busy(upstream, await self._read(state, upstream))
            if stream and upstream.status == 200:
                release = False  # the relay releases the slot when the stream ends
                outcome.upstream_seconds = time.monotonic() - sent_at
                return upstream
            content = await self._read(state, upstream)
            outcome.upstream_seconds = time.monotonic() - sent_at
            if upstream.status == 200:
                _count_usage(content, outcome)
            return _Answer(upstream, content)
        finally:
            if release:
                state.in_flight -= 1

    async def _read(self, state: InstanceState, upstream: UpstreamResponse) -> bytes:
        """The whole body within the total timeout. Read in full, the connection goes back
        to the pool; otherwise (client gone, timeout, error) it is dropped, which tells the
        worker to stop generating. A connection broken mid-body counts against the
        instance's breaker and is retried elsewhere (nothing has reached the client yet)."""
        try:
            if upstream.complete:
                content = await upstream.read()
            else:
                async with asyncio.timeout(self.total_timeout):
                    content = await upstream.read()
        except TimeoutError as exc:
            upstream.close()
            raise UpstreamTimeoutError("The model did not finish in time.") from exc
        except UpstreamIOError as exc:
            upstream.close()
            state.breaker.record_failure(exc)
            raise
        except BaseException:
            upstream.close()
            raise
        upstream.release()
        return content

    def _stream_response(
        self,
        upstream: UpstreamResponse,
        state: InstanceState,
        outcome: Outcome,
        on_end: Callable[[Outcome], None],
    ) -> EventStreamResponse:
        relay = _Relay(upstream, state, outcome, on_end, self.total_timeout)
        return EventStreamResponse(relay.events(), on_close=relay.finish)


class _Answer(Response):
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


class _Relay:
    """Relays one upstream SSE stream as received; a broken upstream ends with an SSE error
    event. ``finish()`` releases the instance slot and the connection and reports the
    outcome, exactly once: when the relay ends, or when the response is closed without
    having started it (the client left first)."""

    def __init__(
        self,
        upstream: UpstreamResponse,
        state: InstanceState,
        outcome: Outcome,
        on_end: Callable[[Outcome], None],
        total_timeout: float,
    ) -> None:
        self.upstream = upstream
        self.state = state
        self.outcome = outcome
        self.on_end = on_end
        self.total_timeout = total_timeout
        self.events_seen = 0
        self.usage_seen = False
        self.finished = False

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
            log.warning("upstream stream broke", extra={"instance": self.state.instance.url})
            yield sse_event(UpstreamError("The model connection broke mid-stream.").body())
        except Exception:
            log.exception("stream relay failed")
            yield sse_event(InternalError("Stream relay failed.").body())
        finally:
            self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.state.in_flight -= 1
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
