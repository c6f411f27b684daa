"""Per-key rate limits: requests per minute, and tokens per minute from real usage.

Built on the ``limits`` library: in memory for one gateway, in Redis so that several
replicas share one budget. Answers carry OpenAI's ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from switchyard_common.errors import RateLimitError
from switchyard_gateway.keys import ApiKey


def make_storage(redis_url: str | None) -> Storage:
    if redis_url:
        scheme_url = redis_url.replace("redis://", "async+redis://", 1).replace(
            "rediss://", "async+rediss://", 1
        )
        return storage_from_string(scheme_url)  # type: ignore[return-value]
    return storage_from_string("async+memory://")  # type: ignore[return-value]


class RateLimiter:
    def __init__(self, storage: Storage, default_rpm: int, default_tpm: int) -> None:
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.default_rpm = default_rpm
        self.default_tpm = default_tpm

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
            allowed = await self.limiter.hit(item, "rpm", key.id)
            stats = await self.limiter.get_window_stats(item, "rpm", key.id)
            headers.update(_headers("requests", rpm, stats.remaining, stats.reset_time))
            if not allowed:
                raise _limited("requests", rpm, stats.reset_time, headers)
        return headers

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
