"""Routing policies, breakers, cache and rate limits as plain objects."""

from __future__ import annotations

import asyncio
from collections import Counter

import pybreaker
import pytest
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string

from switchyard_common.errors import RateLimitError
from switchyard_gateway.breakers import InstanceBreaker, UpstreamFailure
from switchyard_gateway.cache import MemoryCache, cache_key, is_deterministic
from switchyard_gateway.discovery.base import Instance
from switchyard_gateway.keys import ApiKey
from switchyard_gateway.policies import LeastLoaded, SessionAffinity
from switchyard_gateway.pool import InstanceState
from switchyard_gateway.ratelimit import RateLimiter

from .conftest import clear_of_minute_boundary


def state(iid: str, in_flight: int = 0, **kw: int) -> InstanceState:
    breaker = InstanceBreaker(iid, fail_max=2, reset_seconds=0.2)
    s = InstanceState(Instance(id=iid, url=f"http://{iid}"), breaker, healthy=True, **kw)
    for _ in range(in_flight):
        s.slots.acquire()
    return s


def test_least_loaded_prefers_the_idle_instance_of_any_pair() -> None:
    busy, idle = state("busy", in_flight=5), state("idle")
    policy = LeastLoaded(100)
    assert all(policy.order([busy, idle], None)[0] is idle for _ in range(20))
    # With three, the busiest can never win a pair it is in.
    third = state("mid", in_flight=2)
    picks = Counter(policy.order([busy, idle, third], None)[0].instance.id for _ in range(300))
    assert picks["busy"] == 0
    assert picks["idle"] > picks["mid"] > 0


def test_least_loaded_counts_reported_queue() -> None:
    queued = state("q", reported_queued=4)
    free = state("f")
    assert LeastLoaded(100).order([queued, free], None)[0] is free


def test_session_affinity_is_sticky_and_spreads_sessions() -> None:
    members = [state(f"w{i}") for i in range(3)]
    policy = SessionAffinity(100)
    owners = {f"s{i}": policy.order(members, f"s{i}", members)[0].instance.id for i in range(60)}
    assert all(policy.order(members, s, members)[0].instance.id == o for s, o in owners.items())
    assert len(set(owners.values())) == 3


def test_session_affinity_moves_only_the_lost_instances_sessions() -> None:
    members = [state(f"w{i}") for i in range(3)]
    policy = SessionAffinity(100)
    before = {f"s{i}": policy.order(members, f"s{i}", members)[0] for i in range(60)}
    healthy = [m for m in members if m.instance.id != "w0"]
    for session, owner in before.items():
        pick = policy.order(healthy, session, members)[0]
        if owner.instance.id != "w0":
            assert pick is owner
        else:
            assert pick in healthy


def test_session_affinity_falls_back_when_owner_is_saturated() -> None:
    members = [state("a"), state("b")]
    policy = SessionAffinity(per_instance_limit=2)
    owner = policy.order(members, "sess", members)[0]
    owner.slots.acquire(), owner.slots.acquire()
    assert policy.order(members, "sess", members)[0] is not owner


def test_breaker_opens_after_failures_then_half_open_trial_closes_it() -> None:
    breaker = InstanceBreaker("w", fail_max=2, reset_seconds=0.2)
    for _ in range(2):
        with pytest.raises(UpstreamFailure), breaker.attempt():
            raise UpstreamFailure("boom")
    assert breaker.state == pybreaker.STATE_OPEN
    assert not breaker.allows()
    with pytest.raises(pybreaker.CircuitBreakerError), breaker.attempt():
        pass
    import time

    time.sleep(0.25)
    assert breaker.allows()
    with breaker.attempt():
        pass
    assert breaker.state == pybreaker.STATE_CLOSED


def test_breaker_ignores_cancellation() -> None:
    breaker = InstanceBreaker("w", fail_max=1, reset_seconds=10)
    with pytest.raises(asyncio.CancelledError), breaker.attempt():
        raise asyncio.CancelledError
    assert breaker.state == pybreaker.STATE_CLOSED


async def test_memory_cache_ttl_and_bound() -> None:
    cache = MemoryCache(ttl=0.1, max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    await cache.set("c", b"3")
    assert await cache.get("a") is None
    assert await cache.get("c") == b"3"
    await asyncio.sleep(0.15)
    assert await cache.get("c") is None


def test_cache_key_ignores_user_and_stream_and_separates_tenants() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    k = cache_key("t1", "/v1/chat/completions", body)
    assert k == cache_key("t1", "/v1/chat/completions", {**body, "user": "u"})
    assert k != cache_key("t2", "/v1/chat/completions", body)
    assert k != cache_key("t1", "/v1/chat/completions", {**body, "temperature": 0.5})
    assert is_deterministic(body)
    assert is_deterministic({"seed": 3})
    assert not is_deterministic({"temperature": 0.7})


async def test_rate_limiter_requests_and_tokens() -> None:
    limiter = RateLimiter(storage_from_string("async+memory://"), default_rpm=2, default_tpm=0)  # type: ignore[arg-type]
    clear_of_minute_boundary(margin=2)
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


def _limiter(rpm: int, tpm: int = 0) -> RateLimiter:
    return RateLimiter(storage_from_string("async+memory://"), default_rpm=rpm, default_tpm=tpm)  # type: ignore[arg-type]


async def _used(limiter: RateLimiter, rpm: int, key: ApiKey) -> int:
    stats = await limiter.limiter.get_window_stats(RateLimitItemPerMinute(rpm), "rpm", key.id)
    return rpm - stats.remaining


async def test_requests_are_taken_from_the_shared_window_in_leases() -> None:
    limiter = _limiter(rpm=1000)  # lease: 1% of the limit = 10 requests
    key = ApiKey(id="lease", digest="d")
    await limiter.admit(key)
    assert await _used(limiter, 1000, key) == 10
    for _ in range(9):  # the rest of the lease: no more storage hits
        await limiter.admit(key)
    assert await _used(limiter, 1000, key) == 10
    await limiter.admit(key)  # the eleventh request takes a second lease
    assert await _used(limiter, 1000, key) == 20


async def test_near_the_limit_requests_are_taken_one_at_a_time() -> None:
    limiter = _limiter(rpm=250)  # lease of 2
    clear_of_minute_boundary(margin=2)
    key = ApiKey(id="edge", digest="d")
    await limiter.limiter.hit(RateLimitItemPerMinute(250), "rpm", key.id, cost=249)
    headers = _text(await limiter.admit(key))  # a lease of 2 does not fit; one request does
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert await _used(limiter, 250, key) == 250
    with pytest.raises(RateLimitError) as info:
        await limiter.admit(key)
    assert info.value.code == "rate_limit_requests"


async def test_charged_tokens_are_flushed_in_one_batch_and_on_close() -> None:
    limiter = _limiter(rpm=0, tpm=1000)
    limiter.flush_seconds = 30  # only aclose() flushes in this test
    key = ApiKey(id="tokens", digest="d")
    for _ in range(3):
        limiter.charge(key, 100)
    stats = await limiter.limiter.get_window_stats(RateLimitItemPerMinute(1000), "tpm", key.id)
    assert stats.remaining == 1000  # not charged yet: batched
    await limiter.aclose()
    stats = await limiter.limiter.get_window_stats(RateLimitItemPerMinute(1000), "tpm", key.id)
    assert stats.remaining == 700


def test_breaker_state_is_shared_through_redis_without_redis_on_the_success_path(
    redis_url: str,
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    changes: list[tuple[str, str]] = []
    one = InstanceBreaker("w", fail_max=2, reset_seconds=30, redis=client)
    two = InstanceBreaker(
        "w", fail_max=2, reset_seconds=30, redis=client,
        on_change=lambda iid, state: changes.append((iid, state)),
    )  # fmt: skip

    def commands() -> int:  # Redis commands run so far, not counting INFO itself
        stats = client.info("commandstats")
        return sum(v["calls"] for k, v in stats.items() if k != "cmdstat_info")

    before = commands()
    for _ in range(50):  # healthy traffic: no Redis round trips at all
        with one.attempt():
            pass
        assert one.allows()
    assert commands() == before
    for _ in range(2):
        with pytest.raises(UpstreamFailure), one.attempt():
            raise UpstreamFailure("boom")
    assert one.state == pybreaker.STATE_OPEN and not one.allows()
    assert two.allows()  # the other replica learns at its next refresh...
    two.refresh_view()
    assert two.state == pybreaker.STATE_OPEN and not two.allows()
    assert changes == [("w", pybreaker.STATE_OPEN)]  # ...and tells its listeners
    with pytest.raises(pybreaker.CircuitBreakerError), two.attempt():
        pass


def test_shared_breaker_half_open_trial_is_one_at_a_time_and_closes_it_everywhere(
    redis_url: str,
) -> None:
    import time

    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    one = InstanceBreaker("t", fail_max=1, reset_seconds=1.2, redis=client)
    two = InstanceBreaker("t", fail_max=1, reset_seconds=1.2, redis=client)
    with pytest.raises(UpstreamFailure), one.attempt():
        raise UpstreamFailure("boom")
    two.refresh_view()
    assert two.state == pybreaker.STATE_OPEN and not two.allows()
    time.sleep(1.25)  # Redis keeps opened_at in whole seconds
    assert two.allows()
    trial = two.attempt()
    with trial, pytest.raises(pybreaker.CircuitBreakerError), two.attempt():
        pass  # a second request during the trial is not a second trial
    assert two.state == pybreaker.STATE_CLOSED
    one.refresh_view()
    assert one.state == pybreaker.STATE_CLOSED  # written to Redis for every replica
    # A failed trial opens it again.
    with pytest.raises(UpstreamFailure), one.attempt():
        raise UpstreamFailure("boom")
    time.sleep(1.25)  # Redis keeps opened_at in whole seconds
    with pytest.raises(UpstreamFailure), one.attempt():
        raise UpstreamFailure("still down")
    assert one.state == pybreaker.STATE_OPEN and not one.allows()
    two.refresh_view()
    assert two.state == pybreaker.STATE_OPEN
