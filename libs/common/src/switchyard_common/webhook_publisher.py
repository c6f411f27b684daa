"""Publishing events to the webhook service without ever slowing a request.

``publish`` only puts the event on a bounded in-memory queue and returns; a background task
posts queued events to the webhook service's ``POST /internal/v1/events``, retrying with
backoff while that service is down. The event id is chosen when the event is queued, so a
retry after a lost answer is acknowledged there without a second copy. Events that find the
queue full, that the webhook service refuses, or that are still queued at shutdown are
dropped and counted in ``switchyard_webhook_publisher_dropped_events_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from switchyard_common.http import HttpClientConfig, create_http_client

log = logging.getLogger(__name__)

EVENTS_PATH = "/internal/v1/events"


@dataclass(frozen=True)
class QueuedEvent:
    type: str
    data: dict[str, Any]
    tenant: str | None
    id: str = field(default_factory=lambda: "evt_" + secrets.token_hex(12))


class PublisherMetrics:
    """``switchyard_<service>_webhook_events_*``: the publishing service's own families."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        prefix = f"switchyard_{service.replace('-', '_')}_webhook_events"
        self.published = Counter(
            f"{prefix}_published",
            "Events the webhook service acknowledged.",
            registry=registry,
        )
        self.dropped = Counter(
            f"{prefix}_dropped",
            "Events dropped: queue_full, rejected (by the webhook service) or shutdown.",
            ["reason"],
            registry=registry,
        )
        for reason in ("queue_full", "rejected", "shutdown"):
            self.dropped.labels(reason)
        self.queued = Gauge(
            f"{prefix}_queued",
            "Events waiting to be sent to the webhook service.",
            registry=registry,
        )


class WebhookPublisher:
    """Queues events for the webhook service at ``base_url``; the lifespan owns it."""

    def __init__(
        self,
        base_url: str,
        registry: CollectorRegistry,
        *,
        service: str,
        token: str | None = None,
        max_queue: int = 10_000,
        retry_initial_seconds: float = 0.2,
        retry_max_seconds: float = 10.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.metrics = PublisherMetrics(registry, service)
        self._queue: asyncio.Queue[QueuedEvent] = asyncio.Queue(max_queue)
        self._http = create_http_client(
            HttpClientConfig(connect_timeout=timeout_seconds, read_timeout=timeout_seconds),
            base_url=base_url,
        )
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._retry = (retry_initial_seconds, retry_max_seconds)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def publish(self, event_type: str, data: dict[str, Any], tenant: str | None = None) -> bool:
        """Queue one event; never waits. False when the queue was full (the event is dropped).
        From another thread (a callback run off the event loop) it is handed to the loop,
        and True means only that it was handed over."""
        event = QueuedEvent(event_type, data, tenant)
        if self._loop is not None and not self._on_loop():
            self._loop.call_soon_threadsafe(self._put, event)
            return True
        return self._put(event)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _put(self, event: QueuedEvent) -> bool:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.metrics.dropped.labels("queue_full").inc()
            return False
        self.metrics.queued.set(self._queue.qsize())
        return True

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="webhook-publisher")

    async def aclose(self, drain_seconds: float = 2.0) -> None:
        """Give queued events ``drain_seconds`` to go out, then drop (and count) the rest."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_seconds)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        left = self._queue.qsize()
        if left:
            self.metrics.dropped.labels("shutdown").inc(left)
        await self._http.aclose()

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._send(event)
            except asyncio.CancelledError:
                self.metrics.dropped.labels("shutdown").inc()  # still unsent at shutdown
                raise
            finally:
                self._queue.task_done()
                self.metrics.queued.set(self._queue.qsize())

    async def _send(self, event: QueuedEvent) -> None:
        body = {"id": event.id, "type": event.type, "data": event.data, "tenant": event.tenant}
        delay, delay_max = self._retry
        while True:
            try:
                answer = await self._http.post(EVENTS_PATH, json=body, headers=self._headers)
            except httpx.HTTPError as exc:
                log.info("webhook service unreachable, will retry: %r", exc)
            else:
                if answer.is_success:
                    self.metrics.published.inc()
                    return
                if answer.status_code < 500 and answer.status_code != 429:
                    log.warning("webhook service refused event %s: %s", event.type, answer.text)
                    self.metrics.dropped.labels("rejected").inc()
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, delay_max)
