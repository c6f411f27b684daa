"""Background responses in the session store: queued, claimed under a lease, renewed,
taken up again once the lease expired, failed after too many attempts, cancelled, and never
claimed twice at once (concurrent claimers on real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from switchyard_common.errors import InvalidRequestError, NotFoundError
from switchyard_session import migrate
from switchyard_session.background_stats import BackgroundStats
from switchyard_session.config import SessionSettings
from switchyard_session.db import Database, create_engine
from switchyard_session.retention import Retention
from switchyard_session.store import Store
from tests.support.postgres import PostgresServer

T = "tenant-a"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def _store(url: str, tmp_path: Path, clock: Clock, pool: int = 10) -> Store:
    settings = SessionSettings(data_dir=tmp_path, database_url=url, database_pool_size=pool)
    db = Database(create_engine(url, settings))
    await migrate.upgrade(db.engine)
    return Store(db, Retention(None, {}), clock)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'session.db'}"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    store = await _store(url, tmp_path, Clock())
    yield store
    await store.db.close()


def _response(id_: str) -> dict[str, Any]:
    return {"id": id_, "object": "response", "status": "queued", "output": [], "background": True}


async def test_claim_renew_finish(store: Store) -> None:
    queued = await store.queue_response(T, _response("resp_1"), {"model": "m", "input": "hi"})
    assert queued["status"] == "queued"
    claim = await store.claim("gw-a", 30, 3)
    assert claim.claimed is not None and claim.claimed["id"] == "resp_1"
    assert claim.claimed["tenant"] == T and claim.claimed["request"]["input"] == "hi"
    assert (await store.get_response(T, "resp_1"))["status"] == "in_progress"
    assert (await store.claim("gw-b", 30, 3)).claimed is None  # leased to gw-a
    assert await store.renew("resp_1", "gw-a", 30) == "in_progress"
    assert await store.renew("resp_1", "gw-b", 30) is None
    final = {**_response("resp_1"), "status": "completed", "output": [
        {"type": "message", "id": "msg_1", "role": "assistant", "content": []}]}  # fmt: skip
    item = {"id": "msg_0", "type": "message", "role": "user", "content": []}
    assert not await store.finish("resp_1", "gw-b", final, [item])
    assert await store.finish("resp_1", "gw-a", final, [item])
    assert (await store.get_response(T, "resp_1"))["status"] == "completed"
    listed = await store.list_input_items(T, "resp_1", after=None, limit=10, order="asc")
    assert [i["id"] for i in listed["data"]] == ["msg_0"]
    assert await store.cancel_response(T, "resp_1") == (final, False)


async def test_expired_lease_is_taken_up_then_failed(store: Store) -> None:
    clock: Clock = store.clock  # type: ignore[assignment]
    await store.queue_response(T, _response("resp_1"), {})
    for attempt in (1, 2):
        claim = await store.claim(f"gw-{attempt}", 10, 2)
        assert claim.claimed is not None and claim.claimed["attempt"] == attempt
        clock.now += 11  # the claimer died: its lease runs out
    claim = await store.claim("gw-3", 10, 2)
    assert claim.claimed is None and claim.failed == [{"id": "resp_1", "tenant": T}]
    assert (await store.get_response(T, "resp_1"))["status"] == "failed"
    assert await store.renew("resp_1", "gw-2", 10) is None


async def test_release_on_shutdown(store: Store) -> None:
    await store.queue_response(T, _response("resp_1"), {})
    assert (await store.claim("gw-a", 60, 1)).claimed is not None
    assert not await store.release("resp_1", "gw-b")
    assert await store.release("resp_1", "gw-a")
    claim = await store.claim("gw-b", 60, 1)  # at once, and not counted as an attempt
    assert claim.claimed is not None and claim.claimed["attempt"] == 1


async def test_cancel(store: Store) -> None:
    await store.queue_response(T, _response("resp_1"), {})
    assert (await store.claim("gw-a", 30, 3)).claimed is not None
    cancelled, changed = await store.cancel_response(T, "resp_1")
    assert cancelled["status"] == "cancelled" and changed
    assert not (await store.cancel_response(T, "resp_1"))[1]  # announced once
    assert await store.renew("resp_1", "gw-a", 30) == "cancelled"  # the runner stops
    assert not await store.finish("resp_1", "gw-a", _response("resp_1"), [])
    with pytest.raises(NotFoundError):
        await store.cancel_response("tenant-b", "resp_1")
    await store.store_response(T, _response("resp_2"), [], store=True, tokens={})
    with pytest.raises(InvalidRequestError):
        await store.cancel_response(T, "resp_2")


async def test_concurrent_claimers_never_share(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    store = await _store(postgres_server.create_database(), tmp_path, Clock(), pool=20)
    try:
        ids = [f"resp_{i:03d}" for i in range(40)]
        for id_ in ids:
            await store.queue_response(T, _response(id_), {})

        async def claimer(name: str) -> list[str]:
            got = []
            while (claim := await store.claim(name, 60, 3)).claimed is not None:
                got.append(claim.claimed["id"])
            return got

        results = await asyncio.gather(*(claimer(f"gw-{n}") for n in range(8)))
        claimed = [id_ for got in results for id_ in got]
        assert sorted(claimed) == ids  # each exactly once
    finally:
        await store.db.close()


async def test_background_gauges(store: Store) -> None:
    clock: Clock = store.clock  # type: ignore[assignment]
    registry = CollectorRegistry()
    stats = BackgroundStats(registry)

    def gauges() -> tuple[float | None, ...]:
        def value(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(f"switchyard_session_background_{name}", labels)

        return (
            value("responses", status="queued"), value("responses", status="in_progress"),
            value("oldest_age_seconds", status="queued"),
            value("oldest_age_seconds", status="in_progress"), value("expired_leases"),
        )  # fmt: skip

    await stats.refresh(store.db, clock.now)
    assert gauges() == (0, 0, 0, 0, 0)  # every series exists from the start
    await store.queue_response(T, _response("resp_1"), {})
    clock.now += 5
    await store.queue_response(T, _response("resp_2"), {})
    clock.now += 5
    await stats.refresh(store.db, clock.now)
    assert gauges() == (2, 0, 10, 0, 0)
    assert (await store.claim("gw-a", 30, 3)).claimed is not None  # the oldest: resp_1
    clock.now += 40  # gw-a died: its lease ran out 10 s ago
    await stats.refresh(store.db, clock.now)
    assert gauges() == (1, 1, 45, 50, 1)
    assert (await store.claim("gw-b", 30, 3)).claimed is not None  # resp_1 taken up again
    await stats.refresh(store.db, clock.now)
    assert gauges() == (1, 1, 45, 50, 0)
