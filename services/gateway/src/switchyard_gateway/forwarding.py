"""Forwarding a request to model-worker instances: which to try, retries with backoff
within a deadline, breakers, and the fallback models; the answer is relayed by ``relay``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pybreaker
from starlette.responses import Response

from switchyard_common.context import REQUEST_ID_HEADER, request_id_var
from switchyard_common.errors import (
    ModelNotFoundError,
    OverloadedError,
    ServiceUnavailableError,
    UpstreamTimeoutError,
)
from switchyard_common.internal_calls import TENANT_HEADER
from switchyard_common.telemetry import trace_headers
from switchyard_gateway.breakers import UpstreamFailure
from switchyard_gateway.outcome import Outcome
from switchyard_gateway.policies import RoutingPolicy
from switchyard_gateway.pool import InstancePool, InstanceState
from switchyard_gateway.relay import StreamRelay, UpstreamAnswer, count_usage
from switchyard_gateway.upstream import (
    UpstreamClient,
    UpstreamIOError,
    UpstreamResponse,
    encode_headers,
)

log = logging.getLogger(__name__)


class InstancesBusyError(OverloadedError):
    """Every instance of the model is at this gateway's per-instance in-flight bound."""

    default_code = "instances_at_capacity"


_BREAKER_FAILURE_STATUSES = frozenset({500, 502, 504})
_BUSY_STATUSES = frozenset({429, 503})


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
            fixed = encode_headers({"content-type": "application/json", TENANT_HEADER: tenant})
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
        model: str,
        tenant: str,
        affinity: str | None,
        outcome: Outcome,
        on_stream_end: Callable[[Outcome], None],
    ) -> Response:
        """Send ``raw`` (``body`` as bytes) for ``model`` (the body's model, alias resolved)
        and its fallbacks; a stream's end is reported to ``on_stream_end``."""
        deadline = time.monotonic() + self.retry_deadline
        requested = model
        chain = [requested, *self.fallbacks.get(requested, [])]
        headers = self._headers(tenant)
        stream = body.get("stream") is True
        attempts = 0
        busy: _Busy | None = None
        last_error: Exception | None = None
        known = False
        saturated = False
        for candidate in chain:
            known = known or self.pool.knows(candidate)
            payload = raw
            if candidate != body["model"]:
                payload = orjson.dumps({**body, "model": candidate})
            targets, full = await self._targets(candidate, affinity)
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
                outcome.model = candidate
                try:
                    result = await self._attempt(
                        state, path, payload, headers, stream, outcome, on_stream_end
                    )
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
                return result
        if outcome.retries:
            outcome.retries.pop()  # the last failed attempt was not followed by a retry
        if busy is not None:
            # Every instance was full: pass the last answer (429/503 + Retry-After) on.
            return UpstreamAnswer(busy.response, busy.content)
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
        on_stream_end: Callable[[Outcome], None],
    ) -> Response | _Busy:
        sent_at = time.monotonic()
        lease = state.slots.acquire()
        relay: StreamRelay | None = None
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
                outcome.upstream_seconds = time.monotonic() - sent_at
                # The relay holds the instance slot until the stream ends.
                relay = StreamRelay(
                    upstream, lease, state.instance.url, outcome, on_stream_end,
                    self.total_timeout,
                )  # fmt: skip
                return relay.response()
            content = await self._read(state, upstream)
            outcome.upstream_seconds = time.monotonic() - sent_at
            if upstream.status == 200:
                count_usage(content, outcome)
            return UpstreamAnswer(upstream, content)
        finally:
            if relay is None:
                lease.release()

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
