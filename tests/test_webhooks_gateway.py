"""Webhook endpoints through the gateway: the ``openai`` SDK's ``client.webhooks`` with an API
key, each key's tenant forwarded, auth on every route, and only public paths relayed."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
import standardwebhooks

from services.webhook.tests.webhook_support import (
    fast_settings,
    run_receiver,
    serve_app,
    webhook_service,
)
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.keys import hash_key
from switchyard_gateway.main import create_app as create_gateway

ACME_KEY = "sk-sy-acme-" + "a" * 24
GLOBEX_KEY = "sk-sy-globex-" + "b" * 24
TOKEN = "internal-" + "c" * 24


@contextlib.asynccontextmanager
async def platform(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A webhook service (with an internal token) behind a gateway; yields both base URLs."""
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"id": "k1", "tenant": "acme", "digest": hash_key(ACME_KEY)},
                    {"id": "k2", "tenant": "globex", "digest": hash_key(GLOBEX_KEY)},
                ]
            }
        )
    )
    hook_settings = fast_settings(tmp_path / "webhook", internal_token=TOKEN)
    async with webhook_service(hook_settings) as hooks:
        settings = GatewaySettings(
            keys_file=keys, webhook_url=hooks.url, webhook_token=TOKEN, log_json=False
        )
        async with serve_app(create_gateway(settings)) as gateway:
            yield gateway, hooks.url


def sdk(gateway: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


async def test_sdk_round_trip_through_the_gateway(tmp_path: Path) -> None:
    async with run_receiver() as receiver, platform(tmp_path) as (gateway, _hooks):
        client = sdk(gateway, ACME_KEY)
        created = await client.webhooks.create(
            name="orders", url=receiver.url, event_types=["response.completed"]
        )
        assert created.signing_secret.startswith("whsec_")
        assert (await client.webhooks.retrieve(created.id)).name == "orders"
        updated = await client.webhooks.update(created.id, name="orders-2")
        assert updated.name == "orders-2"
        assert [e.id async for e in await client.webhooks.list(limit=1)] == [created.id]
        rotated = await client.webhooks.rotate_secret(
            created.id, keep_old_secret_active_for_24_hours=True
        )
        result = await client.webhooks.test(created.id, event_type="response.completed")
        assert result.status_code == 200
        (sample,) = receiver.received
        for secret in (created.signing_secret, rotated.signing_secret):
            assert client.webhooks.unwrap(sample.body, sample.headers, secret=secret).type == (
                "response.completed"
            )
            standardwebhooks.Webhook(secret).verify(sample.body, sample.headers)
        assert "response.completed" in (await client.webhooks.event_types.list()).data

        # Deliveries (a Switchyard extension) through the gateway, for the key's tenant.
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {ACME_KEY}"}) as http:
            r = await http.get(f"{gateway}/v1/webhook_endpoints/{created.id}/deliveries")
            assert r.status_code == 200 and r.json()["object"] == "list"

        # Another tenant's key sees none of it.
        other = sdk(gateway, GLOBEX_KEY)
        with pytest.raises(openai.NotFoundError):
            await other.webhooks.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            await other.webhooks.delete(created.id)
        assert (await other.webhooks.list()).data == []

        assert (await client.webhooks.delete(created.id)).deleted is True
        with pytest.raises(openai.NotFoundError):
            await client.webhooks.retrieve(created.id)


async def test_every_route_needs_a_key_and_paths_stay_public(tmp_path: Path) -> None:
    async with platform(tmp_path) as (gateway, hooks), httpx.AsyncClient() as http:
        for method, path in [
            ("GET", "/v1/webhook_endpoints"),
            ("POST", "/v1/webhook_endpoints"),
            ("GET", "/v1/webhook_endpoints/we_1"),
            ("POST", "/v1/webhook_endpoints/we_1"),
            ("DELETE", "/v1/webhook_endpoints/we_1"),
            ("POST", "/v1/webhook_endpoints/we_1/rotate_secret"),
            ("POST", "/v1/webhook_endpoints/we_1/test"),
            ("GET", "/v1/webhook_endpoints/we_1/deliveries"),
            ("POST", "/v1/webhook_endpoints/we_1/replay"),
            ("GET", "/v1/webhook_event_types"),
        ]:
            r = await http.request(method, gateway + path)
            assert r.status_code == 401, (method, path)
            r = await http.request(method, gateway + path, headers={"authorization": "Bearer x"})
            assert r.status_code == 401, (method, path)

        auth = {"authorization": f"Bearer {ACME_KEY}", "x-switchyard-tenant": "globex"}
        # A tenant header from the caller is not trusted: the key's tenant is used.
        r = await http.get(gateway + "/v1/webhook_endpoints", headers=auth)
        assert r.status_code == 200
        for sneaky in [
            "/v1/webhook_endpoints/..%2F..%2Finternal%2Fv1%2Fevents",
            "/v1/webhook_endpoints/%2E%2E/%2E%2E/internal/v1/events",
        ]:
            r = await http.post(gateway + sneaky, headers=auth, json={"type": "batch.failed"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path"

        # The webhook service itself wants the internal token the gateway sends.
        r = await http.get(hooks + "/v1/webhook_endpoints", headers={"x-switchyard-tenant": "a"})
        assert r.status_code == 401


async def test_without_a_webhook_url_the_routes_answer_404(tmp_path: Path) -> None:
    settings = GatewaySettings(api_key_hashes=[hash_key(ACME_KEY)], log_json=False)
    async with serve_app(create_gateway(settings)) as gateway, httpx.AsyncClient() as http:
        r = await http.get(
            f"{gateway}/v1/webhook_endpoints", headers={"authorization": f"Bearer {ACME_KEY}"}
        )
        assert r.status_code == 404 and "webhook_url" in r.json()["error"]["message"]
