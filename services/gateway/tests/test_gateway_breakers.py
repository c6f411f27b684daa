"""Instance breakers: open, half-open trial, cancellation, and state shared through Redis.

Instead of waiting out a breaker's reset time, a test moves the time it opened back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pybreaker
import pytest

from switchyard_gateway.breakers import InstanceBreaker, UpstreamFailure


def age(breaker: InstanceBreaker, seconds: float) -> None:
    """Move the time ``breaker`` opened ``seconds`` back, in its (maybe shared) storage."""
    storage = breaker.breaker._state_storage
    assert storage.opened_at is not None
    earlier = storage.opened_at - timedelta(seconds=seconds)
    if isinstance(storage, pybreaker.CircuitRedisStorage):
        # pybreaker only ever moves the shared time forward: write the key itself.
        storage._redis.set(storage._namespace("opened_at"), int(earlier.timestamp()))
    else:
        storage.opened_at = earlier


def test_breaker_opens_after_failures_then_half_open_trial_closes_it() -> None:
    breaker = InstanceBreaker("w", fail_max=2, reset_seconds=0.2)
    for _ in range(2):
        with pytest.raises(UpstreamFailure), breaker.attempt():
            raise UpstreamFailure("boom")
    assert breaker.state == pybreaker.STATE_OPEN
    assert not breaker.allows()
    with pytest.raises(pybreaker.CircuitBreakerError), breaker.attempt():
        pass
    age(breaker, 0.25)  # as if the reset time had passed
    assert breaker.allows()
    with breaker.attempt():
        pass
    assert breaker.state == pybreaker.STATE_CLOSED


def test_breaker_ignores_cancellation() -> None:
    breaker = InstanceBreaker("w", fail_max=1, reset_seconds=10)
    with pytest.raises(asyncio.CancelledError), breaker.attempt():
        raise asyncio.CancelledError
    assert breaker.state == pybreaker.STATE_CLOSED


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
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    one = InstanceBreaker("t", fail_max=1, reset_seconds=1.2, redis=client)
    two = InstanceBreaker("t", fail_max=1, reset_seconds=1.2, redis=client)
    with pytest.raises(UpstreamFailure), one.attempt():
        raise UpstreamFailure("boom")
    two.refresh_view()
    assert two.state == pybreaker.STATE_OPEN and not two.allows()
    age(one, 2)  # as if the reset time had passed (Redis keeps whole seconds)
    two.refresh_view()
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
    age(one, 2)
    one.refresh_view()
    with pytest.raises(UpstreamFailure), one.attempt():
        raise UpstreamFailure("still down")
    assert one.state == pybreaker.STATE_OPEN and not one.allows()
    two.refresh_view()
    assert two.state == pybreaker.STATE_OPEN
