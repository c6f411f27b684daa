"""Delivery on the embedded SQLite database: retries until the receiver is back, dead
letters, replay, auto-disable, rotation grace, metrics, and tenant isolation."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import openai
import pytest
import standardwebhooks

from services.webhook.tests.webhook_support import (
    Receiver,
    fast_settings,
    run_receiver,
    webhook_service,
)
from switchyard_webhook.signing import signature
from tests.support.procs import free_port, metric_value


async def test_receiver_down_then_500_then_back_gets_every_event(tmp_path: Path) -> None:
    port = free_port()
    settings = fast_settings(tmp_path, retry_schedule_seconds=[0.05] * 30)
    async with webhook_service(settings) as service:
        client = service.client()
        target = f"http://127.0.0.1:{port}/hook"
        await client.webhooks.create(name="r", url=target, event_types=["batch.completed"])
        ids = [(await service.publish("batch.completed", {"id": f"b{i}"}))["id"] for i in range(5)]
        # Nothing listens yet: connection refused, every event fails at least once.
        await service.dispatcher.wait_outcomes(lambda o: o["failed"] >= 5, within=20)
        answers = iter([500] * 6)
        receiver = Receiver(status=lambda _: next(answers, 200))
        async with run_receiver(port=port, receiver=receiver):
            await receiver.wait_accepted(5)
        assert sorted(r.webhook_id for r in receiver.accepted) == sorted(ids)
        assert len(receiver.received) == 11
        await service.dispatcher.wait_outcomes(lambda o: o["succeeded"] >= 5, within=20)
        metrics = (await service.get("/metrics")).text
        assert (
            metric_value(metrics, "switchyard_webhook_deliveries_total", {"outcome": "succeeded"})
            == 5
        )
        assert (
            metric_value(metrics, "switchyard_webhook_deliveries_total", {"outcome": "dead_letter"})
            == 0
        )


async def test_dead_letter_then_replay_one_and_a_range(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, retry_schedule_seconds=[0.01, 0.01])
    async with run_receiver() as receiver, webhook_service(settings) as service:
        receiver.status = 500
        endpoint = await service.client().webhooks.create(
            name="r", url=receiver.url, event_types=["batch.failed"]
        )
        since = time.time() - 1
        first = await service.publish("batch.failed", {"id": "b1"})
        second = await service.publish("batch.failed", {"id": "b2"})
        await service.dispatcher.wait_outcomes(lambda o: o["dead_letter"] >= 2, within=20)
        assert len(receiver.received) == 6  # three attempts each
        dead = await service.deliveries(endpoint.id, status="dead_letter")
        assert {d["event_id"] for d in dead} == {first["id"], second["id"]}
        assert all(d["attempts"] == 3 and d["response_status_code"] == 500 for d in dead)
        assert all(d["latency_ms"] is not None and d["next_attempt_at"] is None for d in dead)
        await service.dispatcher.refresh_stats()
        metrics = (await service.get("/metrics")).text
        assert metric_value(metrics, "switchyard_webhook_dead_letter_deliveries") == 2

        receiver.status = 200
        one = next(d for d in dead if d["event_id"] == first["id"])
        r = await service.post(f"/v1/webhook_endpoints/{endpoint.id}/deliveries/{one['id']}/replay")
        assert r.status_code == 200 and r.json()["event_id"] == first["id"]
        (replayed,) = await receiver.wait_accepted(1)
        assert replayed.webhook_id == first["id"]  # the same event id as every earlier try

        r = await service.post(
            f"/v1/webhook_endpoints/{endpoint.id}/replay",
            {"since": since, "status": "dead_letter"},
        )
        assert r.json()["replayed"] == 2
        got = await receiver.wait_accepted(3)
        assert sorted(g.webhook_id for g in got[1:]) == sorted([first["id"], second["id"]])
        r = await service.post(
            f"/v1/webhook_endpoints/{endpoint.id}/replay", {"since": 5, "until": 1}
        )
        assert r.status_code == 400


async def test_failing_endpoint_is_disabled_and_says_so(tmp_path: Path) -> None:
    settings = fast_settings(
        tmp_path,
        retry_schedule_seconds=[0.01] * 5,
        auto_disable_failures=3,
        auto_disable_after_seconds=0,
    )
    async with (
        run_receiver() as failing,
        run_receiver() as ops,
        webhook_service(settings) as service,
    ):
        failing.status = 500
        client = service.client()
        bad = await client.webhooks.create(
            name="bad", url=failing.url, event_types=["response.completed"]
        )
        await client.webhooks.create(
            name="ops", url=ops.url, event_types=["switchyard.endpoint.disabled"]
        )
        await service.publish("response.completed", {"id": "resp_1"})
        (notice,) = await ops.wait_accepted(1)
        event = json.loads(notice.body)
        assert event["type"] == "switchyard.endpoint.disabled"
        assert event["data"]["id"] == bad.id and "3 failed attempts" in event["data"]["reason"]
        assert len(failing.received) == 3
        disabled = (await service.get(f"/v1/webhook_endpoints/{bad.id}")).json()
        assert disabled["status"] == "disabled"
        # Disabled: new events are not queued for it; its pending delivery waits.
        assert (await service.publish("response.completed", {"id": "resp_2"}))["deliveries"] == 0
        await service.dispatcher.refresh_stats()
        metrics = (await service.get("/metrics")).text
        assert metric_value(metrics, "switchyard_webhook_disabled_endpoints") == 1
        assert metric_value(metrics, "switchyard_webhook_endpoints_auto_disabled_total") == 1

        failing.status = 200
        enabled = await client.webhooks.update(bad.id, extra_body={"status": "enabled"})
        assert enabled.model_dump()["status"] == "enabled"
        (resumed,) = await failing.wait_accepted(1)
        assert json.loads(resumed.body)["data"] == {"id": "resp_1"}


async def test_rotation_keeps_the_old_secret_for_its_grace_only(tmp_path: Path) -> None:
    offset = [0.0]
    settings = fast_settings(tmp_path)
    clock = lambda: time.time() + offset[0]  # noqa: E731
    async with run_receiver() as receiver, webhook_service(settings, clock=clock) as service:
        client = service.client()
        endpoint = await client.webhooks.create(
            name="r", url=receiver.url, event_types=["response.completed"]
        )
        old = endpoint.signing_secret
        new = (
            await client.webhooks.rotate_secret(
                endpoint.id, keep_old_secret_active_for_24_hours=True
            )
        ).signing_secret
        await service.publish("response.completed", {"id": "resp_1"})
        (got,) = await receiver.wait_accepted(1)
        for secret in (old, new):
            client.webhooks.verify_signature(got.body, got.headers, secret=secret)
            standardwebhooks.Webhook(secret).verify(got.body, got.headers)

        offset[0] = 24 * 3600 + 60  # the grace is over
        await service.publish("response.completed", {"id": "resp_2"})
        later = (await receiver.wait_accepted(2))[1]
        stamp = int(later.headers["webhook-timestamp"])
        expected = signature(new, later.webhook_id, stamp, later.body)
        assert later.headers["webhook-signature"] == expected
        assert (
            signature(old, later.webhook_id, stamp, later.body)
            not in later.headers["webhook-signature"]
        )

        newest = (await client.webhooks.rotate_secret(endpoint.id)).signing_secret
        offset[0] = 0
        await service.publish("response.completed", {"id": "resp_3"})
        third = (await receiver.wait_accepted(3))[2]
        client.webhooks.verify_signature(third.body, third.headers, secret=newest)
        with pytest.raises(openai.InvalidWebhookSignatureError):
            client.webhooks.verify_signature(third.body, third.headers, secret=new)


async def test_another_tenants_ids_are_not_found(tmp_path: Path) -> None:
    async with run_receiver() as receiver, webhook_service(fast_settings(tmp_path)) as service:
        mine = await service.client().webhooks.create(
            name="mine", url=receiver.url, event_types=["batch.failed"]
        )
        await service.publish("batch.failed", {"id": "b1"})
        (_,) = await receiver.wait_accepted(1)
        (delivery,) = await service.deliveries(mine.id)
        intruder = service.client("intruder")
        calls = [
            intruder.webhooks.retrieve(mine.id),
            intruder.webhooks.update(mine.id, name="stolen"),
            intruder.webhooks.rotate_secret(mine.id),
            intruder.webhooks.test(mine.id, event_type="batch.failed"),
            intruder.webhooks.delete(mine.id),
        ]
        for call in calls:
            with pytest.raises(openai.NotFoundError):
                await call
        base = f"/v1/webhook_endpoints/{mine.id}"
        for path in [f"{base}/deliveries", f"{base}/deliveries/{delivery['id']}"]:
            assert (await service.get(path, tenant="intruder")).status_code == 404
        for path, body in [
            (f"{base}/deliveries/{delivery['id']}/replay", None),
            (f"{base}/replay", {"since": 0}),
        ]:
            assert (await service.post(path, body, tenant="intruder")).status_code == 404
        assert (await intruder.webhooks.list()).data == []
        still = await service.client().webhooks.retrieve(mine.id)
        assert still.name == "mine" and still.signing_secret_hint == mine.signing_secret_hint
        assert len(receiver.received) == 1  # no test event, no replay reached it


async def test_events_past_retention_are_deleted_once_delivered(tmp_path: Path) -> None:
    offset = [0.0]
    clock = lambda: time.time() + offset[0]  # noqa: E731
    settings = fast_settings(tmp_path, retention_seconds=3600, retry_schedule_seconds=[1e6])
    async with run_receiver() as receiver, webhook_service(settings, clock=clock) as service:
        endpoint = await service.client().webhooks.create(
            name="r", url=receiver.url, event_types=["batch.failed"]
        )
        await service.publish("batch.failed", {"id": "b1"})
        await service.dispatcher.wait_outcomes(lambda o: o["succeeded"] >= 1, within=20)
        receiver.status = 500
        await service.publish("batch.failed", {"id": "b2"})  # fails: stays open
        await service.dispatcher.wait_outcomes(lambda o: o["failed"] >= 1, within=20)
        assert await service.dispatcher.prune() == 0  # nothing old yet
        offset[0] = 7200
        assert await service.dispatcher.prune() == 1  # the delivered one, not the open one
        left = await service.deliveries(endpoint.id)
        assert [json.loads(r.body)["data"]["id"] for r in receiver.accepted] == ["b1"]
        assert len(left) == 1 and left[0]["status"] == "pending"


async def test_a_slow_receiver_holds_only_its_own_slots(tmp_path: Path) -> None:
    settings = fast_settings(
        tmp_path, endpoint_concurrency=2, dispatcher_concurrency=4, endpoint_timeout_seconds=30
    )
    async with (
        run_receiver() as slow,
        run_receiver() as fast,
        webhook_service(settings) as service,
    ):
        slow.hold = asyncio.Event()
        for name, receiver in (("slow", slow), ("fast", fast)):
            await service.client().webhooks.create(
                name=name, url=receiver.url, event_types=["batch.completed"]
            )
        for i in range(10):
            await service.publish("batch.completed", {"id": f"b{i}"})
        # The fast receiver gets everything while the slow one holds its two slots.
        await fast.wait_accepted(10)
        assert len(slow.received) == 2
        slow.hold.set()
        await slow.wait_accepted(10)
        assert len(slow.received) == 10


async def test_an_attempt_past_the_endpoint_timeout_fails_and_is_retried(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, endpoint_timeout_seconds=0.3)
    async with run_receiver() as receiver, webhook_service(settings) as service:
        receiver.hold = asyncio.Event()
        endpoint = await service.client().webhooks.create(
            name="r", url=receiver.url, event_types=["batch.failed"]
        )
        await service.publish("batch.failed", {"id": "b1"})
        await service.dispatcher.wait_outcomes(lambda o: o["failed"] >= 1, within=20)
        (delivery,) = await service.deliveries(endpoint.id)
        assert "Timeout" in delivery["error"] and delivery["response_status_code"] is None
        receiver.hold.set()
        await service.dispatcher.wait_outcomes(lambda o: o["succeeded"] >= 1, within=20)
