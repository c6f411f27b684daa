"""Per-key rate limits: requests per minute, and tokens per minute from real usage.

Built on the ``limits`` library: in memory for one gateway, in Redis so that several
replicas share one budget. Answers carry OpenAI's ``x-ratelimit-*`` headers.

Cost per request: two window reads and one hit. Token usage is known only after the
response, so it is charged in batches: ``charge()`` adds to a per-key tally and one
background flush per ``flush_seconds`` sends the sums (a task per request cost more than the
whole rate limit check). ``aclose()`` flushes what is left.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from switchyard_common.errors import RateLimitError
from switchyard_gateway.keys import ApiKey

log = logging.getLogger(__name__)


def make_storage(redis_url: str | None) -> Storage:
    if redis_url:
        scheme_url = redis_url.replace("redis://", "async+redis://", 1).replace(
            "rediss://", "async+rediss://", 1
        )
        return storage_from_string(scheme_url)  # type: ignore[return-value]
    return storage_from_string("async+memory://")  # type: ignore[return-value]


class RateLimiter:
    def __init__(
        self, storage: Storage, default_rpm: int, default_tpm: int, flush_seconds: float = 0.05
    ) -> None:
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.default_rpm = default_rpm
        self.default_tpm = default_tpm
        self.flush_seconds = flush_seconds
        self._pending: dict[str, tuple[ApiKey, int]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def limits_for(self, key: ApiKey) -> tuple[int, int]:
        rpm = self.default_rpm if key.rpm is None else key.rpm
        tpm = self.default_tpm if key.tpm is None else key.tpm
        return rpm, tpm

    async def admit(self, key: ApiKey) -> dict[str, str]:
        """Count one request; raise 429 if the key is over either limit. Returns headers."""
        rpm, tpm = self.limits_for(key)
        headers: dict[str, str] = {}
        if tpm:
            item = RateLimitItemPerMinute(tpm)
            stats = await self.limiter.get_window_stats(item, "tpm", key.id)
            headers.update(_headers("tokens", tpm, stats.remaining, stats.reset_time))
            if stats.remaining <= 0:
                raise _limited("tokens", tpm, stats.reset_time, headers)
        if rpm:
            item = RateLimitItemPerMinute(rpm)
            stats = await self.limiter.get_window_stats(item, "rpm", key.id)
            allowed = stats.remaining > 0 and await self.limiter.hit(item, "rpm", key.id)
            remaining = stats.remaining - 1 if allowed else 0
            headers.update(_headers("requests", rpm, remaining, stats.reset_time))
            if not allowed:
                raise _limited("requests", rpm, stats.reset_time, headers)
        return headers

    def charge(self, key: ApiKey, tokens: int) -> None:
        """Charge ``tokens`` to the key's TPM budget with the next batch (see module doc)."""
        if tokens <= 0 or not self.limits_for(key)[1]:
            return
        pending = self._pending.get(key.id)
        self._pending[key.id] = (key, tokens + (pending[1] if pending else 0))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.flush_seconds)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for key, tokens in pending.values():
            try:
                await self.record_tokens(key, tokens)
            except Exception as exc:
                log.warning("could not record token usage: %r", exc)

    async def aclose(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        await self.flush()

    async def record_tokens(self, key: ApiKey, tokens: int) -> None:
        _, tpm = self.limits_for(key)
        if tpm and tokens > 0:
            # Usage is known only afterwards: charge it even past the limit (it was spent),
            # so the next request waits.
            item = RateLimitItemPerMinute(tpm)
            stats = await self.limiter.get_window_stats(item, "tpm", key.id)
            cost = min(tokens, stats.remaining)
            if cost > 0:
                await self.limiter.hit(item, "tpm", key.id, cost=cost)


def _headers(kind: str, limit: int, remaining: int, reset_time: float) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(limit),
        f"x-ratelimit-remaining-{kind}": str(max(0, remaining)),
        f"x-ratelimit-reset-{kind}": f"{max(0.0, reset_time - time.time()):.3f}s",
    }


def _limited(kind: str, limit: int, reset_time: float, headers: dict[str, str]) -> RateLimitError:
    wait = max(1, math.ceil(reset_time - time.time()))
    return RateLimitError(
        f"Rate limit reached for {kind} per minute: limit {limit}. Retry after {wait}s.",
        code=f"rate_limit_{kind}",
        headers={**headers, "retry-after": str(wait)},
    )
