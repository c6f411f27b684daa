"""Admission control: a bounded concurrency limit plus a bounded queue with a deadline.

When the queue is full, or a queued request waits past its deadline, the caller gets a fast
``OverloadedError`` (503 + ``Retry-After``) instead of piling up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from switchyard_common.errors import OverloadedError


class Rejected(OverloadedError):
    """Not admitted; ``reason`` is ``queue_full``, ``queue_timeout`` or ``shutting_down``."""

    def __init__(self, reason: str, message: str, *, retry_after: float, status_code: int) -> None:
        super().__init__(message, retry_after=retry_after, status_code=status_code)
        self.reason = reason


@dataclass(frozen=True)
class LoadSnapshot:
    in_flight: int
    queued: int
    capacity: int
    max_queue: int


class Admission:
    def __init__(self, capacity: int, max_queue: int, queue_timeout: float) -> None:
        self.capacity = capacity
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def snapshot(self) -> LoadSnapshot:
        return LoadSnapshot(self.in_flight, self.queued, self.capacity, self.max_queue)

    def close(self) -> None:
        """Stop admitting new requests (graceful shutdown); in-flight ones finish."""
        self.closed = True

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self.closed:
            raise Rejected(
                "shutting_down", "This worker is shutting down.", retry_after=1, status_code=503
            )
        if self.in_flight < self.capacity and not self._waiters:
            self.in_flight += 1
            return
        if len(self._waiters) >= self.max_queue:
            raise Rejected(
                "queue_full",
                "The model is at capacity and its queue is full; retry shortly.",
                retry_after=1,
                status_code=429,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.queue_timeout)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over just as we gave up: pass it on
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise Rejected(
                    "queue_timeout",
                    "Timed out waiting in the queue for the model; retry shortly.",
                    retry_after=2,
                    status_code=503,
                ) from None
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot moves to the waiter; in_flight unchanged
                return
        self.in_flight -= 1
