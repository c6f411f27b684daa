"""Per-key rate limits: requests in leases from the shared window, tokens in batches.

The windows run on a clock the test holds (``limits_clock``), one second into a minute:
the sliding window's rounding just after a minute boundary cannot move a count.
"""

from __future__ import annotations

import pytest
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string

from switchyard_common.errors import RateLimitError
from switchyard_gateway.keys import ApiKey
from switchyard_gateway.ratelimit import RateLimiter

from .clock import ManualClock


async def test_rate_limiter_requests_and_tokens(limits_clock: ManualClock) -> None:
    limiter = _limiter(limits_clock, rpm=2)
    key = ApiKey(id="k1", digest="d")
    headers = _text(await limiter.admit(key))
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "1"
    await limiter.admit(key)
    with pytest.raises(RateLimitError) as info:
        await limiter.admit(key)
    assert info.value.status_code == 429
    assert int(info.value.headers["retry-after"]) >= 1
    assert info.value.headers["x-ratelimit-remaining-requests"] == "0"
    # Per-key limits override the defaults; 0 means unlimited.
    tokens_key = ApiKey(id="k2", digest="d2", rpm=0, tpm=100)
    await limiter.admit(tokens_key)
    await limiter.record_tokens(tokens_key, 150)
    with pytest.raises(RateLimitError) as info:
        await limiter.admit(tokens_key)
    assert info.value.code == "rate_limit_tokens"


def _text(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in headers}


def _limiter(clock: ManualClock, rpm: int, tpm: int = 0) -> RateLimiter:
    storage = storage_from_string("async+memory://")
    return RateLimiter(storage, default_rpm=rpm, default_tpm=tpm, clock=clock)  # type: ignore[arg-type]


async def _used(limiter: RateLimiter, rpm: int, key: ApiKey) -> int:
    stats = await limiter.limiter.get_window_stats(RateLimitItemPerMinute(rpm), "rpm", key.id)
    return rpm - stats.remaining


async def test_requests_are_taken_from_the_shared_window_in_leases(
    limits_clock: ManualClock,
) -> None:
    limiter = _limiter(limits_clock, rpm=1000)  # lease: 1% of the limit = 10 requests
    key = ApiKey(id="lease", digest="d")
    await limiter.admit(key)
    assert await _used(limiter, 1000, key) == 10
    for _ in range(9):  # the rest of the lease: no more storage hits
        await limiter.admit(key)
    assert await _used(limiter, 1000, key) == 10
    await limiter.admit(key)  # the eleventh request takes a second lease
    assert await _used(limiter, 1000, key) == 20


async def test_near_the_limit_requests_are_taken_one_at_a_time(
    limits_clock: ManualClock,
) -> None:
    limiter = _limiter(limits_clock, rpm=250)  # lease of 2
    key = ApiKey(id="edge", digest="d")
    await limiter.limiter.hit(RateLimitItemPerMinute(250), "rpm", key.id, cost=249)
    headers = _text(await limiter.admit(key))  # a lease of 2 does not fit; one request does
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert await _used(limiter, 250, key) == 250
    with pytest.raises(RateLimitError) as info:
        await limiter.admit(key)
    assert info.value.code == "rate_limit_requests"


async def test_charged_tokens_are_flushed_in_one_batch_and_on_close(
    limits_clock: ManualClock,
) -> None:
    limiter = _limiter(limits_clock, rpm=0, tpm=1000)
    limiter.flush_seconds = 30  # only aclose() flushes in this test
    key = ApiKey(id="tokens", digest="d")
    for _ in range(3):
        limiter.charge(key, 100)
    stats = await limiter.limiter.get_window_stats(RateLimitItemPerMinute(1000), "tpm", key.id)
    assert stats.remaining == 1000  # not charged yet: batched
    await limiter.aclose()
    stats = await limiter.limiter.get_window_stats(RateLimitItemPerMinute(1000), "tpm", key.id)
    assert stats.remaining == 700
