"""Per-key rate limits: requests per minute, and tokens per minute from real usage.

Built on the ``limits`` library (sliding window counters): in memory for one gateway, in
Redis so that several replicas share one budget. Answers carry OpenAI's ``x-ratelimit-*``
headers. What a request costs:

- **Requests** are taken from the shared window in leases: one hit of 1% of the limit (at
  most 50; 1 for limits under 200/min), then counted down locally, so a busy key costs one
  storage round trip per lease, not per request. A lease unused after a second is dropped,
  so a replica holds at most 1% of a key's budget unused. When a lease is refused (near
  the limit) requests are taken one at a time.
- **Window reads** (for the headers and the token check) are kept per key for
  ``window_cache_seconds`` (0.1 s); local requests are counted down on the kept copy, and a
  refused request always reads afresh.
- **Tokens** are known only after the response, so they are charged in batches:
  ``charge()`` adds to a per-key tally and one background flush per ``flush_seconds``
  sends the sums (a task per request cost more than the whole check). ``aclose()``
  flushes what is left.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Callable

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
        self,
        storage: Storage,
        default_rpm: int,
        default_tpm: int,
        flush_seconds: float = 0.05,
        window_cache_seconds: float = 0.1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.clock = clock  # the wall clock of the window's reset times
        self.limiter = SlidingWindowCounterRateLimiter(storage)
        self.default_rpm = default_rpm
        self.default_tpm = default_tpm
        self.flush_seconds = flush_seconds
        self.window_cache_seconds = window_cache_seconds
        self._windows: dict[tuple[str, str], _Window] = {}
        self._leases: dict[str, _Lease] = {}
        self._pending: dict[str, tuple[ApiKey, int]] = {}
        self._flusher: asyncio.Task[None] | None = None

    def limits_for(self, key: ApiKey) -> tuple[int, int]:
        rpm = self.default_rpm if key.rpm is None else key.rpm
        tpm = self.default_tpm if key.tpm is None else key.tpm
        return rpm, tpm

    async def admit(self, key: ApiKey) -> list[tuple[bytes, bytes]]:
        """Count one request; raise 429 if the key is over either limit. Returns the
        ``x-ratelimit-*`` response headers (raw, as ASGI wants them)."""
        rpm, tpm = self.limits_for(key)
        headers: list[tuple[bytes, bytes]] = []
        if tpm:
            window = await self._window(_item(tpm), "tpm", key.id)
            headers += window.headers(b"tokens", tpm)
            if window.remaining <= 0:
                raise _limited("tokens", tpm, window.reset_time - self.clock(), headers)
        if rpm:
            item = _item(rpm)
            allowed = await self._take_request(item, key.id)
            cached = self._windows.get(("rpm", key.id))
            if allowed and cached is not None and cached.fresh(self.clock()):
                cached.remaining -= 1  # this hit, on the kept copy
                window = cached
            else:
                window = await self._window(item, "rpm", key.id, fresh=True)
            headers += window.headers(b"requests", rpm)
            if not allowed:
                raise _limited("requests", rpm, window.reset_time - self.clock(), headers)
        return headers

    async def _take_request(self, item: RateLimitItemPerMinute, key_id: str) -> bool:
        lease = self._leases.get(key_id)
        if lease is not None and lease.left > 0 and lease.fresh(self.clock()):
            lease.left -= 1
            return True
        size = max(1, min(_MAX_LEASE, item.amount // 100))
        if size > 1 and await self.limiter.hit(item, "rpm", key_id, cost=size):
            self._leases[key_id] = _Lease(size - 1, self.clock())
            return True
        return await self.limiter.hit(item, "rpm", key_id)

    async def _window(
        self, item: RateLimitItemPerMinute, kind: str, key_id: str, *, fresh: bool = False
    ) -> _Window:
        cached = self._windows.get((kind, key_id))
        if cached is not None and not fresh and cached.fresh(self.clock()):
            return cached
        stats = await self.limiter.get_window_stats(item, kind, key_id)
        window = _Window(stats.remaining, stats.reset_time, self.clock(), self.window_cache_seconds)
        self._windows[(kind, key_id)] = window
        return window

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
            # Usage is known only afterwards, and the window cannot hold more than its
            # limit: charge up to what is left, which fills the window, so the next request
            # waits for it to slide.
            item = _item(tpm)
            stats = await self.limiter.get_window_stats(item, "tpm", key.id)
            cost = min(tokens, stats.remaining)
            if cost > 0:
                await self.limiter.hit(item, "tpm", key.id, cost=cost)
            self._windows.pop(("tpm", key.id), None)  # the next check reads the new total


@functools.lru_cache(maxsize=1024)
def _item(per_minute: int) -> RateLimitItemPerMinute:
    return RateLimitItemPerMinute(per_minute)


_MAX_LEASE = 50
_LEASE_SECONDS = 1.0


class _Lease:
    """Requests already counted in the shared window, not yet used by this replica."""

    __slots__ = ("expires", "left")

    def __init__(self, left: int, now: float) -> None:
        self.left = left
        self.expires = now + _LEASE_SECONDS

    def fresh(self, now: float) -> bool:
        return now < self.expires


class _Window:
    """A window read: what is left and when the window resets, kept for a short while."""

    __slots__ = ("expires", "remaining", "reset_header", "reset_time")

    def __init__(self, remaining: int, reset_time: float, now: float, keep_seconds: float) -> None:
        self.remaining = remaining
        self.reset_time = reset_time
        self.expires = now + keep_seconds
        self.reset_header = b"%.3fs" % max(0.0, reset_time - now)

    def fresh(self, now: float) -> bool:
        return now < self.expires

    def headers(self, kind: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit-" + kind, b"%d" % limit),
            (b"x-ratelimit-remaining-" + kind, b"%d" % max(0, self.remaining)),
            (b"x-ratelimit-reset-" + kind, self.reset_header),
        ]


def _limited(
    kind: str, limit: int, reset_in: float, headers: list[tuple[bytes, bytes]]
) -> RateLimitError:
    wait = max(1, math.ceil(reset_in))
    return RateLimitError(
        f"Rate limit reached for {kind} per minute: limit {limit}. Retry after {wait}s.",
        code=f"rate_limit_{kind}",
        headers={
            **{name.decode(): value.decode() for name, value in headers},
            "retry-after": str(wait),
        },
    )
