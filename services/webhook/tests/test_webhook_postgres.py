"""Delivery on a real PostgreSQL: dispatchers in two replicas never double-send, and a
dispatcher SIGKILLed mid-delivery loses nothing (duplicates carry one webhook-id)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from services.webhook.tests.webhook_support import (
    Service,
    fast_settings,
    run_receiver,
    webhook_service,
)
from tests.support.postgres import PostgresServer
from tests.support.procs import ServiceProcess, free_port


async def test_two_dispatchers_never_double_send(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database()
    common = {
        "database_url": url,
        "auto_migrate": True,
        "endpoint_concurrency": 16,
        "dispatcher_batch_size": 8,
    }
    events = 150
    async with (
        run_receiver() as receiver,
        webhook_service(fast_settings(tmp_path / "a", **common)) as one,
        webhook_service(fast_settings(tmp_path / "b", **common)) as two,
    ):
        await one.client().webhooks.create(
            name="r", url=receiver.url, event_types=["batch.completed"]
        )
        gate = asyncio.Semaphore(8)

        async def publish(i: int) -> dict:
            async with gate:
                return await (one if i % 2 else two).publish("batch.completed", {"id": f"b{i}"})

        published = await asyncio.gather(*(publish(i) for i in range(events)))
        await receiver.wait_accepted(events, timeout=60)
        sent = Counter(r.webhook_id for r in receiver.received)
        assert set(sent) == {p["id"] for p in published}
        assert max(sent.values()) == 1, "a delivery was sent twice"

    # Stopped: each dispatcher finished what it had in flight. Every delivery was recorded
    # exactly once, by one of them.
    recorded = one.dispatcher.outcomes["succeeded"] + two.dispatcher.outcomes["succeeded"]
    assert recorded == events


def webhook_process(tmp_path: Path, port: int, database_url: str, name: str) -> ServiceProcess:
    env = {
        "SWITCHYARD_WEBHOOK_PORT": str(port),
        "SWITCHYARD_WEBHOOK_DATA_DIR": str(tmp_path / "data"),
        "SWITCHYARD_WEBHOOK_DATABASE_URL": database_url,
        "SWITCHYARD_WEBHOOK_AUTO_MIGRATE": "true",
        "SWITCHYARD_WEBHOOK_DISPATCHER_LEASE_SECONDS": "2",
        "SWITCHYARD_WEBHOOK_DISPATCHER_POLL_SECONDS": "0.1",
        "SWITCHYARD_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0.1, 0.1, 0.1, 0.1, 0.1]",
        "SWITCHYARD_WEBHOOK_ENDPOINT_TIMEOUT_SECONDS": "30",
    }
    return ServiceProcess("switchyard_webhook", env, tmp_path / f"{name}.log", port)


async def test_dispatcher_killed_mid_delivery_loses_nothing(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    database_url = postgres_server.create_database()
    port = free_port()
    first = webhook_process(tmp_path, port, database_url, "first")
    try:
        await asyncio.to_thread(first.wait_ready, 60)
        service = Service(first.url)
        async with run_receiver() as receiver:
            receiver.hold = asyncio.Event()
            await service.client().webhooks.create(
                name="r", url=receiver.url, event_types=["batch.completed"]
            )
            ids = [
                (await service.publish("batch.completed", {"id": f"b{i}"}))["id"] for i in range(20)
            ]
            # Deliveries are in flight, held by the receiver: kill the dispatcher now.
            await receiver.wait_for(lambda r: len(r.received) >= 1)
            first.stop(signal.SIGKILL)
            receiver.hold.set()
            second = webhook_process(tmp_path, port, database_url, "second")
            try:
                await asyncio.to_thread(second.wait_ready, 60)
                await receiver.wait_for(
                    lambda r: {x.webhook_id for x in r.accepted} >= set(ids), timeout=60
                )
            finally:
                second.stop()
        # Every event arrived; a resent one carries the id of its event.
        for item in receiver.received:
            assert json.loads(item.body)["id"] == item.webhook_id
        assert {x.webhook_id for x in receiver.received} == set(ids)
        # The delivery held when the dispatcher died was sent again, under the same id.
        assert max(Counter(x.webhook_id for x in receiver.received).values()) >= 2
    finally:
        if first.proc.poll() is None:
            first.stop()


async def test_not_ready_until_migrated_by_the_migrate_command(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    database_url = postgres_server.create_database()
    settings = fast_settings(tmp_path, database_url=database_url, dispatcher_enabled=False)
    assert settings.migrates_at_start() is False  # PostgreSQL: the chart's Job migrates
    async with webhook_service(settings) as service:
        r = await service.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["database"] is False
        env = {**os.environ, "SWITCHYARD_WEBHOOK_DATABASE_URL": database_url}
        migrate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "switchyard_webhook", "migrate", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await migrate.communicate()
        assert migrate.returncode == 0, out.decode()
        assert "migrated to 0001" in out.decode()
        r = await service.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["database"] is True
