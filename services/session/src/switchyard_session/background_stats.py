"""The background-response gauges: how many are queued or running, how old the oldest of
each is, and how many running ones have a lease that ran out (their gateway is gone and no
other has taken them up yet). Read from the database every ``stats_interval_seconds``, so
every replica of the session service reports the same figures (dashboards take the max).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import func, select

from switchyard_session.claims import IN_PROGRESS, QUEUED
from switchyard_session.db import Database
from switchyard_session.schema import responses

log = logging.getLogger(__name__)

STATUSES = (QUEUED, IN_PROGRESS)


class BackgroundStats:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.count = Gauge(
            "switchyard_session_background_responses",
            "Background responses by status: queued, in_progress.",
            ["status"],
            registry=registry,
        )
        self.oldest = Gauge(
            "switchyard_session_background_oldest_age_seconds",
            "Age since creation of the oldest background response in each status (0: none).",
            ["status"],
            registry=registry,
        )
        self.expired_leases = Gauge(
            "switchyard_session_background_expired_leases",
            "Running background responses whose gateway's lease ran out, not yet taken up.",
            registry=registry,
        )
        for status in STATUSES:
            self.count.labels(status)
            self.oldest.labels(status)

    async def refresh(self, db: Database, now: float) -> None:
        """Read the figures at ``now`` (one grouped query and one count)."""
        by_status = (
            select(responses.c.status, func.count(), func.min(responses.c.created_at))
            .where(responses.c.status.in_(STATUSES))
            .group_by(responses.c.status)
        )
        expired = select(func.count()).where(
            responses.c.status == IN_PROGRESS, responses.c.lease_until < now
        )
        async with db.read() as conn:
            rows = {row[0]: (row[1], row[2]) for row in await conn.execute(by_status)}
            lapsed = (await conn.execute(expired)).scalar_one()
        for status in STATUSES:
            count, oldest = rows.get(status, (0, None))
            self.count.labels(status).set(count)
            self.oldest.labels(status).set(max(0.0, now - oldest) if oldest else 0.0)
        self.expired_leases.set(lapsed)

    async def run(self, db: Database, clock: Callable[[], float], interval: float) -> None:
        """Refresh every ``interval`` seconds until cancelled; a failed read is retried."""
        while True:
            try:
                await self.refresh(db, clock())
            except Exception:
                log.exception("background statistics failed")
            await asyncio.sleep(interval)
