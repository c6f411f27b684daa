"""A ``pybreaker`` circuit breaker per worker instance.

With Redis configured, breaker state lives in ``pybreaker``'s Redis storage, so every gateway
replica sees an instance trip at once. Routing asks ``allows()`` (open breakers are skipped
until their reset timeout passes; then a half-open trial may go through), and each attempt
runs inside ``attempt()``, which records success or failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import pybreaker

STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class UpstreamFailure(Exception):
    """An attempt failed in a way that says the instance is unhealthy."""


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, on_change: Callable[[str, str], None], instance_id: str) -> None:
        self.on_change = on_change
        self.instance_id = instance_id

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.on_change(self.instance_id, new_state.name)


class InstanceBreaker:
    def __init__(
        self,
        instance_id: str,
        *,
        fail_max: int,
        reset_seconds: float,
        redis: Any = None,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        storage = (
            pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, redis, namespace=f"switchyard:breaker:{instance_id}"
            )
            if redis is not None
            else None
        )
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_seconds,
            state_storage=storage,
            name=instance_id,
            throw_new_error_on_trip=False,
            # A client that went away says nothing about the instance's health.
            exclude=[asyncio.CancelledError],
            listeners=[_Listener(on_change, instance_id)] if on_change else None,
        )
        self._storage = self.breaker._state_storage

    @property
    def state(self) -> str:
        return str(self.breaker.current_state)

    def allows(self) -> bool:
        if self.state != pybreaker.STATE_OPEN:
            return True
        opened_at = self._storage.opened_at
        reset = timedelta(seconds=self.breaker.reset_timeout)
        return opened_at is None or datetime.now(UTC) >= opened_at + reset

    def attempt(self) -> AbstractContextManager[None]:
        """Run one upstream attempt; raises ``pybreaker.CircuitBreakerError`` if open.

        While the breaker is closed with no failures counted, a success changes nothing, so
        the attempt goes through pybreaker only if it fails (the common case skips its lock
        and state machine on every request)."""
        breaker = self.breaker
        if breaker.current_state == pybreaker.STATE_CLOSED and breaker.fail_counter == 0:
            return _RecordFailure(breaker)
        return breaker.calling()


class _RecordFailure:
    __slots__ = ("breaker",)

    def __init__(self, breaker: pybreaker.CircuitBreaker) -> None:
        self.breaker = breaker

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            # Let pybreaker count it (and trip, and tell listeners) as if it ran the call.
            with contextlib.suppress(BaseException), self.breaker.calling():
                raise exc
