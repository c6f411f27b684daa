"""A ``pybreaker`` circuit breaker per worker instance.

With Redis configured, breaker state lives in ``pybreaker``'s Redis storage, so every gateway
replica sees an instance trip. Routing asks ``allows()`` (open breakers are skipped until
their reset timeout passes; then a half-open trial may go through), and each attempt runs
inside ``attempt()``, which records success or failure.

With Redis, the event loop never waits on it: the storage is read through a *view* (state,
failure count, when it opened) that the pool refreshes in a thread once per probe interval
(``refresh_view``). A replica's own outcomes update its view at once (failures, trips, one
half-open trial at a time) and are written to Redis by pybreaker in a worker thread; other
replicas' trips reach it within one refresh. Without Redis the view is the in-memory
storage itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
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
        self.shared = redis is not None
        self._view: tuple[str, int, datetime | None] = (pybreaker.STATE_CLOSED, 0, None)
        self._trial_running = False
        if self.shared:
            self.refresh_view()

    def refresh_view(self) -> None:
        """Read the shared state (blocking I/O with Redis: call it from a thread).

        Reading ``breaker.state`` also tells the listeners about a change made elsewhere."""
        state = self.breaker.state.name
        self._view = (state, self.breaker.fail_counter, self._storage.opened_at)

    def _current(self) -> tuple[str, int, datetime | None]:
        if self.shared:
            return self._view
        return (self._storage.state, self._storage.counter, None)

    @property
    def state(self) -> str:
        return self._current()[0]

    def allows(self) -> bool:
        state, _, opened_at = self._current()
        if state != pybreaker.STATE_OPEN:
            return True
        if not self.shared:
            opened_at = self._storage.opened_at
        reset = timedelta(seconds=self.breaker.reset_timeout)
        return opened_at is None or datetime.now(UTC) >= opened_at + reset

    def attempt(self) -> AbstractContextManager[None]:
        """Run one upstream attempt; raises ``pybreaker.CircuitBreakerError`` if open.

        While the breaker is closed with no failures counted, a success changes nothing, so
        the attempt goes through pybreaker only if it fails (the common case skips its lock,
        its state machine and, with Redis, any round trip)."""
        state, failures, _ = self._current()
        if state == pybreaker.STATE_CLOSED and failures == 0:
            return _RecordFailure(self)
        if self.shared:
            return self._shared_attempt(state)
        return self._through_pybreaker()

    @contextlib.contextmanager
    def _through_pybreaker(self) -> Iterator[None]:
        try:
            with self.breaker.calling():
                yield
        finally:
            if self.shared:
                self.refresh_view()

    @contextlib.contextmanager
    def _shared_attempt(self, state: str) -> Iterator[None]:
        """With Redis, past a failure: the view decides (one half-open trial at a time from
        this replica) and pybreaker writes the outcome to Redis off the event loop."""
        trial = state != pybreaker.STATE_CLOSED
        if trial:
            if self._trial_running or not self.allows():
                raise pybreaker.CircuitBreakerError(f"breaker {self.breaker.name} is open")
            self._trial_running = True
            _, failures, opened_at = self._view
            self._view = (pybreaker.STATE_HALF_OPEN, failures, opened_at)
        try:
            yield
        except asyncio.CancelledError:
            raise  # says nothing about the instance
        except Exception as exc:
            self.record_failure(exc)
            raise
        else:
            self._view = (pybreaker.STATE_CLOSED, 0, None)
            self._off_loop(self._record_success_in_pybreaker)
        finally:
            if trial:
                self._trial_running = False

    def record_failure(self, exc: BaseException) -> None:
        """Count a failed attempt that ran outside ``attempt()``'s pybreaker path."""
        if not self.shared:
            self._record_in_pybreaker(exc)
            return
        # Shared: count it in the local view at once (this replica stops routing to a
        # tripped instance without waiting for Redis) and let pybreaker write it to Redis
        # off the event loop; the view is then re-read from Redis.
        state, failures, opened_at = self._view
        failures += 1
        if state == pybreaker.STATE_HALF_OPEN or failures >= self.breaker.fail_max:
            state, opened_at = pybreaker.STATE_OPEN, datetime.now(UTC)
        self._view = (state, failures, opened_at)
        self._off_loop(self._record_in_pybreaker, exc)

    @staticmethod
    def _off_loop(fn: Callable[..., None], *args: Any) -> None:
        try:
            asyncio.get_running_loop().run_in_executor(None, fn, *args)
        except RuntimeError:  # no event loop (tests, tools): here and now
            fn(*args)

    def _record_in_pybreaker(self, exc: BaseException) -> None:
        # Let pybreaker count it (and trip, and tell listeners) as if it ran the call.
        with contextlib.suppress(BaseException), self._through_pybreaker():
            raise exc

    def _record_success_in_pybreaker(self) -> None:
        # Closes a breaker whose reset timeout has passed, resets a failure count; if
        # another replica has opened it again meanwhile, pybreaker refuses and the view
        # re-read from Redis says so.
        with contextlib.suppress(Exception), self._through_pybreaker():
            pass


class _RecordFailure:
    __slots__ = ("breaker",)

    def __init__(self, breaker: InstanceBreaker) -> None:
        self.breaker = breaker

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            self.breaker.record_failure(exc)
