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
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

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
        self._recorder: asyncio.Task[None] | None = None
        self._results: list[tuple[Job, Attempt]] = []
        self._results_ready = asyncio.Event()
        self._stopping = False
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
        self._recorder = asyncio.create_task(self._record_loop(), name="webhook-recorder")

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
        if self._recorder is not None:  # write the outcomes still buffered, then stop
            self._stopping = True
            self._results_ready.set()
            try:
                await asyncio.wait_for(self._recorder, grace)
            except TimeoutError:
                log.warning("outcomes not recorded at shutdown: their deliveries will repeat")

    def retry_delay(self, attempts: int) -> float | None:
        """Seconds before the next try after ``attempts`` failures; None: dead-letter."""
        schedule = self.settings.retry_schedule_seconds
        if attempts > len(schedule):
            return None
        jitter = self.settings.retry_jitter * (2 * self.rng.random() - 1)
        return max(0.0, schedule[attempts - 1] * (1 + jitter))

    async def _run(self) -> None:
        settings = self.settings
        # While attempts are in flight, claim only once this many slots are free: one claim
        # per finished attempt would be a query per delivery.
        low_water = max(
            1, min(settings.dispatcher_batch_size, settings.dispatcher_concurrency) // 4
        )
        while True:
            self._wake.clear()
            free = settings.dispatcher_concurrency - len(self._tasks)
            wanted = min(free, settings.dispatcher_batch_size)
            claimed = 0
            if wanted >= low_water or (wanted > 0 and not self._tasks):
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
            self._results.append((job, attempt))
            self._results_ready.set()
        except Exception as exc:  # the lease runs out and the delivery is tried again
            log.warning("delivery %s failed unexpectedly: %r", job.delivery_id, exc)
        finally:
            self._per_endpoint[job.endpoint_id] -= 1
            if self._per_endpoint[job.endpoint_id] <= 0:
                del self._per_endpoint[job.endpoint_id]
            self.wake()

    async def _record_loop(self) -> None:
        """Write outcomes in batches: whatever finished while the last batch was written."""
        while True:
            await self._results_ready.wait()
            self._results_ready.clear()
            batch, self._results = self._results, []
            if batch:
                try:
                    await self._record(batch)
                except Exception as exc:  # their leases run out and they are tried again
                    log.warning("recording %d outcomes failed: %r", len(batch), exc)
            if self._stopping and not self._results:
                return

    async def _record(self, batch: list[tuple[Job, Attempt]]) -> None:
        now = self.clock()
        counts: Counter[str] = Counter()
        disabled: list[dict[str, Any]] = []
        async with self.db.write() as conn:
            succeeded = [job for job, attempt in batch if attempt.ok]
            if succeeded:
                await claims.record_successes(conn, [(j, a) for j, a in batch if a.ok], now)
                counts["succeeded"] = len(succeeded)
            for job, attempt in batch:
                if not attempt.ok:
                    outcome, off = await self._record_failure(conn, job, attempt, now)
                    counts[outcome] += 1
                    disabled += [off] if off is not None else []
        for outcome, n in counts.items():
            self.metrics.deliveries.labels(outcome).inc(n)
        async with self._recorded:
            self.outcomes.update(counts)
            self._recorded.notify_all()
        for endpoint in disabled:
            self.metrics.auto_disabled.inc()
            self.metrics.events.labels(ENDPOINT_DISABLED).inc()
            log.warning("webhook endpoint disabled", extra={"endpoint": endpoint["id"]})

    async def _record_failure(
        self, conn: AsyncConnection, job: Job, attempt: Attempt, now: float
    ) -> tuple[str, dict[str, Any] | None]:
        """Record a failed attempt; the outcome, and the endpoint if this disabled it."""
        delay = self.retry_delay(job.attempts + 1)
        retry_at = now + delay if delay is not None else None
        if not await claims.record(conn, job, attempt, now, retry_at):
            return "lost", None  # its lease ran out; another dispatcher has it now
        outcome = "refused" if attempt.refused else "failed"
        if retry_at is None:
            outcome = "dead_letter"
        settings = self.settings
        disabled = await claims.endpoint_failed(
            conn,
            job.endpoint_id,
            now,
            settings.auto_disable_failures,
            settings.auto_disable_after_seconds,
        )
        if disabled is not None:
            data = {k: v for k, v in disabled.items() if k != "tenant"}
            await publish(conn, disabled["tenant"], ENDPOINT_DISABLED, data, now)
        return outcome, disabled

    async def prune(self, limit: int = 1000) -> int:
        """Delete events past ``retention_seconds`` (one batch); how many went."""
        if self.settings.retention_seconds is None:
            return 0
        before = self.clock() - self.settings.retention_seconds
        async with self.db.write() as conn:
            return await claims.prune(conn, before, limit)

    async def refresh_stats(self) -> None:
        """Update the gauges: oldest pending age, dead letters, disabled endpoints."""
        async with self.db.read() as conn:
            oldest, dead, disabled = await claims.stats(conn)
        self.metrics.oldest_pending.set(max(0.0, self.clock() - oldest) if oldest else 0.0)
        self.metrics.dead_letters.set(dead)
        self.metrics.disabled_endpoints.set(disabled)
