"""The dispatcher: claims due deliveries, sends them signed, records what happened.

At most ``dispatcher_concurrency`` attempts run at once in a process, and at most
``endpoint_concurrency`` to any one endpoint (an endpoint at its cap is left out of the
next claim), so one slow receiver cannot hold every slot. Failed attempts are retried
after the schedule's next wait (with jitter), then dead-lettered; an endpoint failing for
long enough is disabled and a ``switchyard.endpoint.disabled`` event says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable

from switchyard_webhook import claims
from switchyard_webhook.claims import Job
from switchyard_webhook.config import WebhookSettings
from switchyard_webhook.db import Database
from switchyard_webhook.event_types import ENDPOINT_DISABLED
from switchyard_webhook.metrics import WebhookMetrics
from switchyard_webhook.outbox import publish
from switchyard_webhook.sender import Attempt, Sender
from switchyard_webhook.signing import signed_headers

log = logging.getLogger(__name__)
Clock = Callable[[], float]


class Dispatcher:
    def __init__(
        self,
        db: Database,
        settings: WebhookSettings,
        sender: Sender,
        metrics: WebhookMetrics,
        *,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sender = sender
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._per_endpoint: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        # Outcomes recorded by this dispatcher, and a condition to wait on them.
        self.outcomes: Counter[str] = Counter()
        self._recorded = asyncio.Condition()

    async def wait_outcomes(
        self, predicate: Callable[[Counter[str]], bool], within: float
    ) -> Counter[str]:
        """Wait until ``predicate(outcomes)`` holds (tests and benchmarks)."""
        async with asyncio.timeout(within), self._recorded:
            await self._recorded.wait_for(lambda: predicate(self.outcomes))
        return self.outcomes

    def wake(self) -> None:
        """Look for due deliveries now (an event was just published, a slot freed)."""
        self._wake.set()

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self, grace: float) -> None:
        """Stop claiming; give attempts in flight ``grace`` seconds, then cancel them (their
        leases run out and another dispatcher sends them again, with the same webhook-id)."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def retry_delay(self, attempts: int) -> float | None:
        """Seconds before the next try after ``attempts`` failures; None: dead-letter."""
        schedule = self.settings.retry_schedule_seconds
        if attempts > len(schedule):
            return None
        jitter = self.settings.retry_jitter * (2 * self.rng.random() - 1)
        return max(0.0, schedule[attempts - 1] * (1 + jitter))

    async def _run(self) -> None:
        settings = self.settings
        while True:
            self._wake.clear()
            free = settings.dispatcher_concurrency - len(self._tasks)
            wanted = min(free, settings.dispatcher_batch_size)
            claimed = 0
            if wanted > 0:
                try:
                    claimed = await self._claim(wanted)
                except Exception as exc:
                    log.warning("claiming deliveries failed: %r", exc)
            if claimed and claimed == wanted:
                continue  # more may be due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), settings.dispatcher_poll_seconds)

    async def _claim(self, limit: int) -> int:
        cap = self.settings.endpoint_concurrency
        busy = [e for e, n in self._per_endpoint.items() if n >= cap]
        now = self.clock()
        async with self.db.write() as conn:
            jobs = await claims.claim(
                conn, now, self.settings.dispatcher_lease_seconds, limit, busy
            )
            start, back = [], []
            for job in jobs:
                if self._per_endpoint[job.endpoint_id] < cap:
                    self._per_endpoint[job.endpoint_id] += 1
                    start.append(job)
                else:
                    back.append(job)
            if back:
                await claims.release(conn, back, now)
        # Started only once the claim is committed.
        for job in start:
            task = asyncio.create_task(self._deliver(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(start)

    async def _deliver(self, job: Job) -> None:
        try:
            now = self.clock()
            headers = signed_headers(job.secrets, job.event_id, int(now), job.payload)
            attempt = await self.sender.send(
                job.url, headers, job.payload, self.settings.endpoint_timeout_seconds
            )
            self.metrics.attempt_seconds.observe(attempt.latency)
            await self._record(job, attempt)
        except Exception as exc:  # the lease runs out and the delivery is tried again
            log.warning("delivery %s failed unexpectedly: %r", job.delivery_id, exc)
        finally:
            self._per_endpoint[job.endpoint_id] -= 1
            if self._per_endpoint[job.endpoint_id] <= 0:
                del self._per_endpoint[job.endpoint_id]
            self.wake()

    async def _record(self, job: Job, attempt: Attempt) -> None:
        settings = self.settings
        now = self.clock()
        delay = None if attempt.ok else self.retry_delay(job.attempts + 1)
        retry_at = now + delay if delay is not None else None
        disabled = None
        async with self.db.write() as conn:
            if not await claims.record(conn, job, attempt, now, retry_at):
                log.warning("delivery %s: claim lost before its outcome", job.delivery_id)
                return
            if attempt.ok:
                await claims.endpoint_succeeded(conn, job.endpoint_id)
                outcome = "succeeded"
            else:
                outcome = "refused" if attempt.refused else "failed"
                if retry_at is None:
                    outcome = "dead_letter"
                disabled = await claims.endpoint_failed(
                    conn,
                    job.endpoint_id,
                    now,
                    settings.auto_disable_failures,
                    settings.auto_disable_after_seconds,
                )
                if disabled is not None:
                    await publish(conn, disabled.pop("tenant"), ENDPOINT_DISABLED, disabled, now)
        self.metrics.deliveries.labels(outcome).inc()
        async with self._recorded:
            self.outcomes[outcome] += 1
            self._recorded.notify_all()
        if disabled is not None:
            self.metrics.auto_disabled.inc()
            self.metrics.events.labels(ENDPOINT_DISABLED).inc()
            log.warning("webhook endpoint disabled", extra={"endpoint": job.endpoint_id})

    async def refresh_stats(self) -> None:
        """Update the gauges: oldest pending age, dead letters, disabled endpoints."""
        async with self.db.read() as conn:
            oldest, dead, disabled = await claims.stats(conn)
        self.metrics.oldest_pending.set(max(0.0, self.clock() - oldest) if oldest else 0.0)
        self.metrics.dead_letters.set(dead)
        self.metrics.disabled_endpoints.set(disabled)
