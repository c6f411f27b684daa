"""The session app: ``create_app()`` builds it; the lifespan owns its resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.responses import Response

from switchyard_common.app import create_service_app
from switchyard_common.errors import ServiceUnavailableError
from switchyard_common.internal_calls import require_internal_token
from switchyard_common.readiness import writable_dir_check
from switchyard_session import migrate
from switchyard_session.api import background, context, conversations, items, responses
from switchyard_session.background_stats import BackgroundStats
from switchyard_session.config import SessionSettings
from switchyard_session.db import Database, create_engine
from switchyard_session.retention import Retention, run_cleanup
from switchyard_session.store import Store

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: SessionSettings = app.state.settings
    app.state.readiness.add_check("data_dir", writable_dir_check(settings.data_dir))
    db = Database(create_engine(settings.resolved_database_url(), settings))
    if settings.auto_migrate:
        await migrate.upgrade(db.engine)
    # Not ready while the database is unreachable or its schema is behind the code's.
    app.state.readiness.add_check("database", migrate.schema_check(db.engine))
    retention = Retention(settings.retention_ttl_seconds, settings.retention_tenant_ttl_seconds)
    clock: Callable[[], float] = app.state.clock
    app.state.store = Store(db, retention, clock)
    stats = BackgroundStats(app.state.registry)
    tasks = [
        asyncio.create_task(
            run_cleanup(db, clock, settings.cleanup_interval_seconds, settings.cleanup_batch_size)
        ),
        asyncio.create_task(stats.run(db, clock, settings.stats_interval_seconds)),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await db.close()


async def database_unavailable(_: Request, exc: Exception) -> Response:
    """The database is unreachable (down, restarting): 503 and a retry hint, not a 500."""
    log.warning("database unavailable: %r", exc)
    return ServiceUnavailableError(
        "The session database is unavailable; retry shortly.", headers={"retry-after": "1"}
    ).to_response()


def create_app(
    settings: SessionSettings | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    """The app; ``clock`` (wall-clock seconds) dates rows and decides what has expired."""
    app = create_service_app(settings or SessionSettings(), lifespan=lifespan)
    app.state.clock = clock
    for error in (OSError, OperationalError, InterfaceError):
        app.add_exception_handler(error, database_unavailable)
    guarded = [Depends(require_internal_token)]
    for module in (conversations, items, responses, context, background):
        app.include_router(module.router, dependencies=guarded)
    return app
