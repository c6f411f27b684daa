"""The services' webhook publisher: never blocks, buffers and retries while the webhook
service is down, and counts what it drops."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from services.webhook.tests.webhook_support import fast_settings, run_receiver, webhook_service
from switchyard_common.webhook_publisher import WebhookPublisher
from tests.support.procs import free_port

TOKEN = "internal-" + "d" * 24


def dropped(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value(
        "switchyard_gateway_webhook_events_dropped_total", {"reason": reason}
    )
    return value or 0.0


async def test_events_published_while_the_service_is_down_arrive_once_it_is_up(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = fast_settings(tmp_path, internal_token=TOKEN)
    registry = CollectorRegistry()
    publisher = WebhookPublisher(
        f"http://127.0.0.1:{port}",
        registry,
        service="gateway",
        token=TOKEN,
        retry_initial_seconds=0.05,
    )
    async with run_receiver() as receiver:
        async with webhook_service(settings, port) as service:
            service.tenant = "ops"
            await service.client(token=TOKEN).webhooks.create(
                name="ops", url=receiver.url, event_types=["switchyard.circuit.opened"]
            )
        # The webhook service is down now: events are buffered, not lost.
        publisher.start()
        try:
            for i in range(3):
                assert publisher.publish("switchyard.circuit.opened", {"instance": f"w{i}"}, "ops")
            async with webhook_service(settings, port):
                got = await receiver.wait_accepted(3)
                assert sorted(json.loads(g.body)["data"]["instance"] for g in got) == [
                    "w0",
                    "w1",
                    "w2",
                ]
        finally:
            await publisher.aclose(drain_seconds=0)
    published = "switchyard_gateway_webhook_events_published_total"
    assert registry.get_sample_value(published) == 3
    assert dropped(registry, "shutdown") == dropped(registry, "queue_full") == 0


async def test_full_queue_drops_and_counts_without_waiting() -> None:
    registry = CollectorRegistry()
    publisher = WebhookPublisher(
        f"http://127.0.0.1:{free_port()}", registry, service="gateway", max_queue=2
    )
    results = [publisher.publish("switchyard.worker.ready", {"n": i}) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert dropped(registry, "queue_full") == 3
    await publisher.aclose(drain_seconds=0)
    assert dropped(registry, "shutdown") == 2


async def test_a_retried_event_id_is_stored_once(tmp_path: Path) -> None:
    async with run_receiver() as receiver, webhook_service(fast_settings(tmp_path)) as service:
        await service.client().webhooks.create(
            name="r", url=receiver.url, event_types=["batch.failed"]
        )
        first = await service.publish("batch.failed", {"id": "b1"}, id="evt_retry1")
        again = await service.publish("batch.failed", {"id": "b1"}, id="evt_retry1")
        assert first["deliveries"] == 1 and not first["duplicate"]
        assert again["duplicate"] and again["deliveries"] == 0
        await service.publish("batch.failed", {"id": "b2"})
        got = await receiver.wait_accepted(2)
        assert sorted(json.loads(g.body)["data"]["id"] for g in got) == ["b1", "b2"]


async def test_publish_from_another_thread_reaches_the_queue() -> None:
    registry = CollectorRegistry()
    publisher = WebhookPublisher(
        f"http://127.0.0.1:{free_port()}", registry, service="gateway", max_queue=4
    )
    publisher.start()
    handed = await asyncio.to_thread(publisher.publish, "switchyard.circuit.closed", {"i": 1})
    assert handed
    # Nothing listens: at shutdown the event (queued or being retried) is dropped, counted.
    await publisher.aclose(drain_seconds=0.1)
    assert dropped(registry, "shutdown") == 1
