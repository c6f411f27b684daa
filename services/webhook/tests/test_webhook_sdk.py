"""The ``openai`` SDK's ``client.webhooks`` against the webhook service, and deliveries that
both ``client.webhooks.unwrap`` and the independent ``standardwebhooks`` library verify."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest
import standardwebhooks

from services.webhook.tests.webhook_support import fast_settings, run_receiver, webhook_service


async def test_every_sdk_method_round_trips(tmp_path: Path) -> None:
    async with run_receiver() as receiver, webhook_service(fast_settings(tmp_path)) as service:
        client = service.client()
        created = await client.webhooks.create(
            name="orders", url=receiver.url, event_types=["response.completed"]
        )
        assert created.object == "webhook_endpoint"
        assert created.signing_secret.startswith("whsec_")
        assert created.signing_secret_hint.endswith(created.signing_secret[-4:])
        assert created.event_types == ["response.completed"]

        got = await client.webhooks.retrieve(created.id)
        assert got.id == created.id and got.name == "orders" and got.url == receiver.url
        assert "signing_secret" not in got.model_dump()

        updated = await client.webhooks.update(
            created.id, name="orders-2", event_types=["response.completed", "response.failed"]
        )
        assert updated.name == "orders-2"
        assert updated.event_types == ["response.completed", "response.failed"]

        others = [
            await client.webhooks.create(
                name=f"e{i}", url=receiver.url, event_types=["batch.failed"]
            )
            for i in range(4)
        ]
        first = await client.webhooks.list(limit=2)
        assert len(first.data) == 2 and first.has_more
        ids = [e.id async for e in await client.webhooks.list(limit=2)]
        assert sorted(ids) == sorted([created.id, *(o.id for o in others)])
        assert len(ids) == len(set(ids)) == 5

        rotated = await client.webhooks.rotate_secret(created.id)
        assert rotated.signing_secret != created.signing_secret
        assert rotated.signing_secret.startswith("whsec_")

        result = await client.webhooks.test(created.id, event_type="response.completed")
        assert result.object == "webhook_endpoint.test"
        assert result.status_code == 200 and result.success is True
        assert result.webhook_endpoint_id == created.id
        (sample,) = receiver.received
        event = client.webhooks.unwrap(sample.body, sample.headers, secret=rotated.signing_secret)
        assert event.type == "response.completed"

        types = await client.webhooks.event_types.list()
        assert "response.completed" in types.data
        assert "switchyard.endpoint.disabled" in types.data

        deleted = await client.webhooks.delete(created.id)
        assert deleted.deleted is True and deleted.id == created.id
        with pytest.raises(openai.NotFoundError):
            await client.webhooks.retrieve(created.id)


async def test_delivery_verified_by_sdk_and_standardwebhooks(tmp_path: Path) -> None:
    async with run_receiver() as receiver, webhook_service(fast_settings(tmp_path)) as service:
        client = service.client()
        endpoint = await client.webhooks.create(
            name="r", url=receiver.url, event_types=["response.completed"]
        )
        published = await service.publish("response.completed", {"id": "resp_123"})
        assert published["deliveries"] == 1
        (got,) = await receiver.wait_accepted(1)
        secret = endpoint.signing_secret

        event = client.webhooks.unwrap(got.body, got.headers, secret=secret)
        assert event.type == "response.completed"
        assert event.id == published["id"] == got.webhook_id
        assert event.data.id == "resp_123"
        verified = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
        assert verified["data"] == {"id": "resp_123"}

        # Tampering, a stale timestamp, or the wrong secret fail both verifiers.
        tampered = got.body.replace(b"resp_123", b"resp_999")
        stale = got.headers | {"webhook-timestamp": str(int(time.time()) - 3600)}
        wrong = (await client.webhooks.rotate_secret(endpoint.id)).signing_secret
        for body, headers, key in [
            (tampered, got.headers, secret),
            (got.body, stale, secret),
            (got.body, got.headers, wrong),
        ]:
            with pytest.raises(openai.InvalidWebhookSignatureError):
                client.webhooks.unwrap(body, headers, secret=key)
            with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
                standardwebhooks.Webhook(key).verify(body, headers)


async def test_unsubscribed_and_other_tenants_get_nothing(tmp_path: Path) -> None:
    async with run_receiver() as receiver, webhook_service(fast_settings(tmp_path)) as service:
        await service.client().webhooks.create(
            name="a", url=receiver.url, event_types=["batch.failed"]
        )
        await service.client("other").webhooks.create(
            name="b", url=receiver.url, event_types=["response.completed"]
        )
        assert (await service.publish("response.completed", {"id": "r1"}))["deliveries"] == 0
        assert (await service.publish("batch.failed", {"id": "b1"}))["deliveries"] == 1
        (got,) = await receiver.wait_accepted(1)
        assert json.loads(got.body)["type"] == "batch.failed"
