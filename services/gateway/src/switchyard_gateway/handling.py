"""One API request through the gateway: backpressure, rate limits, cache, forwarding, metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from starlette.requests import Request
from starlette.responses import Response

from switchyard_common.disconnect import cancel_on_disconnect
from switchyard_common.errors import OverloadedError, RateLimitError, SwitchyardError
from switchyard_common.sse import EventStreamResponse
from switchyard_common.telemetry import exemplar, record_genai
from switchyard_gateway.cache import CACHE_HEADER, ResponseCache, cache_key, is_deterministic
from switchyard_gateway.forwarding import Forwarder, InstancesBusyError
from switchyard_gateway.keys import ApiKey, KeyStore
from switchyard_gateway.metrics import GatewayMetrics
from switchyard_gateway.outcome import Outcome
from switchyard_gateway.ratelimit import RateLimiter
from switchyard_gateway.request_parsing import parse_body, read_body
from switchyard_gateway.slots import SlotLease, Slots
from switchyard_gateway.usage import TenantUsage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    name: str  # metrics label
    path: str  # upstream path
    required: tuple[str, ...]


_CACHE_HEADER = CACHE_HEADER.encode()
# A departed client is looked for once the upstream has taken this long: most answers come
# sooner, and then no watcher task is made at all (see cancel_on_disconnect).
_WATCH_AFTER = 0.05

CHAT = Route("chat_completions", "/v1/chat/completions", ("model", "messages"))
COMPLETIONS = Route("completions", "/v1/completions", ("model", "prompt"))
EMBEDDINGS = Route("embeddings", "/v1/embeddings", ("model", "input"))


class Gateway:
    def __init__(
        self,
        forwarder: Forwarder,
        limiter: RateLimiter,
        cache: ResponseCache,
        metrics: GatewayMetrics,
        keys: KeyStore,
        *,
        max_in_flight: int,
        session_header: str,
        max_body_bytes: int,
        usage: TenantUsage | None = None,
    ) -> None:
        self.forwarder = forwarder
        self.limiter = limiter
        self.cache = cache
        self.metrics = metrics
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self.usage = usage
        self.session_header = session_header.lower().encode("latin-1")
        self.slots = Slots(max_in_flight)
        self._store_warned_at: dict[str, float] = {}
        # Read when scraped: no lock and no gauge update on every request.
        metrics.in_flight.set_function(lambda: self.slots.in_use)

    def _store_failed(self, store: str, exc: Exception) -> None:
        """A rate-limit or cache store failed: the request goes on without it (fail open).
        Counted every time; a warning per store at most every 10 s, so an outage does not
        flood the logs."""
        self.metrics.dependency_errors(store).inc()
        now = time.monotonic()
        if now - self._store_warned_at.get(store, -60.0) >= 10.0:
            self._store_warned_at[store] = now
            log.warning("%s store unavailable, serving without it: %r", store, exc)

    async def admit(self, key: ApiKey) -> list[tuple[bytes, bytes]]:
        """Admit one request of ``key`` by its rate limit: its ``x-ratelimit-*`` headers, or
        429 over the limit. A limit store that is down lets the request by (fail open)."""
        try:
            return await self.limiter.admit(key)
        except RateLimitError as exc:
            self.metrics.rate_limited(exc.code or "rate_limit").inc()
            raise
        except Exception as exc:  # the limit store is down: serve rather than fail
            self._store_failed("rate_limit", exc)
            return []

    def _label(self, model: str) -> str:
        """Bounded model label: only models some instance serves."""
        return model if self.forwarder.pool.knows(model) else "unknown"

    def _refused(self, exc: SwitchyardError) -> int:
        """The status of a request answered with ``exc``; every instance busy is counted as
        a backpressure rejection."""
        if isinstance(exc, InstancesBusyError):
            self.metrics.rejected("instance").inc()
        return exc.status_code

    def model_label(self, model: str) -> str:
        """The bounded label of a requested model (an alias resolved)."""
        return self._label(self.forwarder.resolve(model))

    def slot(self, model_label: str, route: str) -> SlotLease:
        """A slot of the gateway's in-flight bound, or 503 ``overloaded`` (counted)."""
        lease = self.slots.try_acquire()
        if lease is None:
            self.metrics.rejected("gateway").inc()
            self.metrics.requests(model_label, route, "503").inc()
            raise OverloadedError("The gateway is at capacity; retry shortly.", retry_after=1)
        return lease

    async def serve(
        self, route: str, model: str, respond: Callable[[], Awaitable[Response]]
    ) -> Response:
        """One request of an API the gateway composes itself (the Responses API): held to
        the gateway's in-flight bound and counted like a proxied one. A stream holds its
        slot, and its latency is observed, until it is over."""
        started = time.monotonic()
        label = self.model_label(model)
        lease = self.slot(label, route)

        def done() -> None:
            lease.release()
            self.metrics.latency(label, route).observe(time.monotonic() - started, exemplar())

        status, response = 500, None
        try:
            response = await respond()
            status = response.status_code
            return response
        except SwitchyardError as exc:
            status = self._refused(exc)
            raise
        finally:
            self.metrics.requests(label, route, str(status)).inc()
            if isinstance(response, EventStreamResponse):
                response.on_close = _then(response.on_close, done)
            else:
                done()

    async def handle(self, request: Request, route: Route) -> Response:
        started = time.monotonic()
        # One pass over the raw headers (Starlette's Headers scans the list per lookup).
        headers: dict[bytes, bytes] = dict(request.scope["headers"])
        authorization = headers.get(b"authorization")
        try:
            key = await self.keys.authenticate(
                authorization.decode("latin-1") if authorization else None
            )
        except SwitchyardError as exc:
            self.metrics.requests("unknown", route.name, str(exc.status_code)).inc()
            raise
        model_label = "unknown"
        status = 500
        rate_headers: list[tuple[bytes, bytes]] = []
        streaming = False
        lease = self.slot(model_label, route.name)
        try:
            raw = await read_body(request, self.max_body_bytes)
            body = parse_body(raw, route.required)
            model = self.forwarder.resolve(body["model"])
            model_label = self._label(model)
            rate_headers = await self.admit(key)
            response = await self._respond(
                request, headers, key, route, raw, body, model, started, lease
            )
            # A stream holds its gateway slot until it ends (see on_stream_end).
            streaming = isinstance(response, EventStreamResponse)
            response.raw_headers.extend(rate_headers)
            status = response.status_code
            return response
        except SwitchyardError as exc:
            status = self._refused(exc)
            exc.headers = {
                **{name.decode(): value.decode() for name, value in rate_headers},
                **exc.headers,
            }
            raise
        finally:
            self.metrics.requests(model_label, route.name, str(status)).inc()
            if not streaming:
                lease.release()
                self.metrics.latency(model_label, route.name).observe(
                    time.monotonic() - started, exemplar()
                )

    async def _respond(
        self,
        request: Request,
        headers: dict[bytes, bytes],
        key: ApiKey,
        route: Route,
        raw: bytes,
        body: dict[str, Any],
        model: str,
        started: float,
        lease: SlotLease,
    ) -> Response:
        cache_id = None
        opted_in = key.cache or headers.get(_CACHE_HEADER, b"").lower() in (b"on", b"true")
        if opted_in and body.get("stream") is not True and is_deterministic(body):
            cache_id = cache_key(key.tenant, route.path, body)
            try:
                hit = await self.cache.get(cache_id)
            except Exception as exc:  # the cache is down: a miss, not a failure
                self._store_failed("cache", exc)
                hit = None
            self.metrics.cache("hit" if hit is not None else "miss").inc()
            if hit is not None:
                return Response(hit, media_type="application/json", headers={CACHE_HEADER: "hit"})
        user = body.get("user")
        session = headers.get(self.session_header)
        affinity = (
            session.decode("latin-1") if session else (user if isinstance(user, str) else None)
        )
        outcome = Outcome()
        span = trace.get_current_span()  # the request's; records only when sampled

        def on_stream_end(done: Outcome) -> None:
            lease.release()
            now = time.monotonic()
            label = self._label(done.model)
            linked = exemplar(span)  # None unless the request is sampled
            self.metrics.latency(label, route.name).observe(now - started, linked)
            if done.first_byte_at:
                self.metrics.ttft(label).observe(done.first_byte_at - started, linked)
            self._account(key, done)
            if span.is_recording():
                _trace(span, route.name, model, done)

        response = await cancel_on_disconnect(
            request,
            self.forwarder.forward(
                route.path, raw, body, model=model, tenant=key.tenant, affinity=affinity,
                outcome=outcome, on_stream_end=on_stream_end,
            ),
            watch_after=_WATCH_AFTER,
        )  # fmt: skip
        for reason in outcome.retries:
            self.metrics.retries(reason).inc()
        overhead = time.monotonic() - started - outcome.upstream_seconds
        self.metrics.overhead(route.name).observe(max(0.0, overhead))
        if not isinstance(response, EventStreamResponse):
            self._account(key, outcome)
            if span.is_recording():
                _trace(span, route.name, model, outcome)
            if cache_id and response.status_code == 200:
                try:
                    await self.cache.set(cache_id, bytes(response.body))
                except Exception as exc:
                    self._store_failed("cache", exc)
                response.headers[CACHE_HEADER] = "miss"
        return response

    def _account(self, key: ApiKey, outcome: Outcome) -> None:
        self.account(key, outcome.model, outcome.prompt_tokens, outcome.completion_tokens)

    def truncated(self, model: str, dropped: int) -> None:
        """A Responses turn left ``dropped`` earlier items out to fit the context."""
        label = self._label(model)
        self.metrics.truncations(label).inc()
        self.metrics.dropped_items(label).inc(dropped)

    def account(self, key: ApiKey, model: str, prompt: int, completion: int) -> None:
        """Tokens one answer used: the tenant's usage, the token metrics and the key's
        tokens-per-minute budget."""
        if self.usage is not None:
            self.usage.record(key.tenant, prompt, completion)
        if not prompt + completion:
            return
        label = self._label(model)
        self.metrics.tokens(label, "prompt").inc(prompt)
        self.metrics.tokens(label, "completion").inc(completion)
        self.limiter.charge(key, prompt + completion)


def _then(first: Callable[[], None] | None, second: Callable[[], None]) -> Callable[[], None]:
    """``first`` (if any), then ``second`` even if ``first`` raised."""

    def both() -> None:
        try:
            if first is not None:
                first()
        finally:
            second()

    return both


def _trace(span: trace.Span, route: str, model: str, outcome: Outcome) -> None:
    """GenAI attributes on the request's span (only a sampled one), TTFT as an event."""
    first = outcome.first_byte_at
    record_genai(
        span, route, request_model=model, response_model=outcome.model,
        input_tokens=outcome.prompt_tokens, output_tokens=outcome.completion_tokens,
        first_token_ago=time.monotonic() - first if first else None,
    )  # fmt: skip
