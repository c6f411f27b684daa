"""The webhook app: ``create_app()`` builds it; the lifespan owns its resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from switchyard_common.app import create_service_app
from switchyard_common.readiness import writable_dir_check
from switchyard_webhook import migrate
from switchyard_webhook.api import deliveries, endpoints, events
from switchyard_webhook.config import WebhookSettings
from switchyard_webhook.db import Database, create_engine
from switchyard_webhook.dispatcher import Dispatcher
from switchyard_webhook.metrics import WebhookMetrics
from switchyard_webhook.sender import Sender
from switchyard_webhook.ssrf import Resolver, TargetPolicy, system_resolver

log = logging.getLogger(__name__)
# How often the gauges (oldest pending, dead letters, disabled endpoints) are refreshed.
STATS_INTERVAL_SECONDS = 5.0


async def _housekeeping(dispatcher: Dispatcher) -> None:
    """Refresh the gauges and delete events past their retention, now and then."""
    while True:
        try:
            await dispatcher.refresh_stats()
            await dispatcher.prune()
        except Exception as exc:
            log.warning("webhook housekeeping failed: %r", exc)
        await asyncio.sleep(STATS_INTERVAL_SECONDS)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: WebhookSettings = app.state.settings
    readiness = app.state.readiness
    readiness.add_check("data_dir", writable_dir_check(settings.data_dir))
    db = Database(create_engine(settings))
    if settings.migrates_at_start():
        await migrate.upgrade(db.engine)

    head = migrate.head_revision()

    async def schema_current() -> bool:
        return await migrate.schema_is_current(db.engine, head)

    readiness.add_check("database", schema_current)
    policy = TargetPolicy(settings.egress_allow_cidrs, app.state.resolver)
    sender = Sender(policy, settings.max_response_bytes)
    await sender.start()
    metrics = WebhookMetrics(app.state.registry)
    dispatcher = Dispatcher(db, settings, sender, metrics, clock=app.state.clock)
    app.state.db, app.state.policy, app.state.sender = db, policy, sender
    app.state.metrics = metrics
    app.state.dispatcher = dispatcher if settings.dispatcher_enabled else None
    stats = None
    if settings.dispatcher_enabled:
        dispatcher.start()
        stats = asyncio.create_task(_housekeeping(dispatcher))
    try:
        yield
    finally:
        if stats is not None:
            stats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stats
            await dispatcher.stop(settings.shutdown_grace_seconds)
        await sender.close()
        await db.engine.dispose()


def create_app(
    settings: WebhookSettings | None = None,
    *,
    resolver: Resolver = system_resolver,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """The app; tests inject a DNS ``resolver`` stub and a ``clock``."""
    app = create_service_app(
        settings or WebhookSettings(),
        lifespan=lifespan,
        routers=[endpoints.router, deliveries.router, events.router],
    )
    app.state.resolver = resolver
    app.state.clock = clock
    return app
