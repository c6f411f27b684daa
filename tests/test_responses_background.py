"""Background responses through the gateway with the ``openai`` SDK, on real processes (a
session service on PostgreSQL, the model-worker, gateways, the webhook service): a queued
response runs to ``completed`` and its webhook verifies with ``client.webhooks.unwrap``; a
cancel stops it mid-generation; a gateway killed while running one leaves it to the next
gateway, which ends it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import standardwebhooks
from openai.types.responses import Response

from services.webhook.tests.webhook_support import (
    Receiver,
    fast_settings,
    run_receiver,
    webhook_service,
)
from tests.support.postgres import PostgresServer
from tests.support.procs import ServiceProcess, free_port, metric_value
from tests.support.stateful import (
    KEY,
    MODEL,
    SESSION_TOKEN,
    start_session,
    start_stateful_gateway,
)

TOKEN = "internal-" + "d" * 24
FINAL = {"completed", "failed", "incomplete", "cancelled"}
LONG = "Count from 1 to 500, one number per line."


@dataclass
class Platform:
    tmp: Path
    worker: ServiceProcess
    session: ServiceProcess
    receiver: Receiver
    env: dict[str, str]
    secret: str = ""

    async def gateway(self, port: int | None = None) -> ServiceProcess:
        return await asyncio.to_thread(
            start_stateful_gateway, self.tmp, self.worker.url, self.session.url,
            env=self.env, port=port,
        )  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.receiver.accepted]

    async def event_for(self, response_id: str, timeout: float = 240) -> dict[str, Any]:
        def found(_: Receiver) -> bool:
            return any(e["data"]["id"] == response_id for e in self.events())

        await self.receiver.wait_for(found, timeout)
        return next(e for e in self.events() if e["data"]["id"] == response_id)


def sdk(gateway: ServiceProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=KEY, max_retries=0)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 120) -> None:
    """Re-ask ``check`` (a request to a service) until it holds; each ask waits on the
    network, and the loop yields between asks."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def running_long(client: openai.AsyncOpenAI, max_output_tokens: int) -> Response:
    """A long background response, once a gateway's runner has it in progress."""
    queued = await client.responses.create(
        model=MODEL, input=LONG, background=True, max_output_tokens=max_output_tokens
    )

    async def running() -> bool:
        return (await client.responses.retrieve(queued.id)).status == "in_progress"

    await until(running)
    return queued


@contextlib.asynccontextmanager
async def platform(
    tmp: Path, worker: ServiceProcess, postgres: PostgresServer
) -> AsyncIterator[Platform]:
    session = await asyncio.to_thread(start_session, tmp, postgres.create_database())
    try:
        hook_settings = fast_settings(tmp / "webhook", internal_token=TOKEN)
        async with run_receiver() as receiver, webhook_service(hook_settings) as hooks:
            env = {
                "SWITCHYARD_GATEWAY_WEBHOOK_URL": hooks.url,
                "SWITCHYARD_GATEWAY_WEBHOOK_TOKEN": TOKEN,
                "SWITCHYARD_GATEWAY_BACKGROUND_LEASE_SECONDS": "2",
                "SWITCHYARD_GATEWAY_BACKGROUND_POLL_SECONDS": "0.2",
            }
            yield Platform(tmp, worker, session, receiver, env)
    finally:
        await asyncio.to_thread(session.stop)


async def subscribe(p: Platform, gateway: ServiceProcess) -> None:
    endpoint = await sdk(gateway).webhooks.create(
        name="responses", url=p.receiver.url,
        event_types=["response.completed", "response.failed", "response.cancelled",
                     "response.incomplete"],
    )  # fmt: skip
    p.secret = endpoint.signing_secret


async def test_background_completes_and_is_announced(
    tmp_path: Path, worker: ServiceProcess, postgres_server: PostgresServer
) -> None:
    async with platform(tmp_path, worker, postgres_server) as p:
        gateway = await p.gateway()
        try:
            await subscribe(p, gateway)
            client = sdk(gateway)
            queued = await client.responses.create(
                model=MODEL, input="Say hello.", background=True, max_output_tokens=16
            )
            assert queued.status == "queued" and queued.background is True
            event = await p.event_for(queued.id)
            got = next(r for r in p.receiver.accepted if json.loads(r.body) == event)
            unwrapped = client.webhooks.unwrap(got.body, got.headers, secret=p.secret)
            assert unwrapped.type in ("response.completed", "response.incomplete")
            assert unwrapped.data.id == queued.id
            # The same delivery passes the independent Standard Webhooks verifier; tampered
            # with, it fails both.
            standardwebhooks.Webhook(p.secret).verify(got.body, got.headers)
            tampered = got.body.replace(queued.id.encode(), b"resp_" + b"0" * 48)
            with pytest.raises(openai.InvalidWebhookSignatureError):
                client.webhooks.unwrap(tampered, got.headers, secret=p.secret)
            with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
                standardwebhooks.Webhook(p.secret).verify(tampered, got.headers)
            done = await client.responses.retrieve(queued.id)
            assert done.status == unwrapped.type.removeprefix("response.")
            assert done.output_text and done.usage is not None and done.usage.output_tokens > 0
            items = await client.responses.input_items.list(queued.id)
            assert [i.type for i in items.data] == ["message"]
            # Only background responses can be cancelled; a finished one stays as it is.
            assert (await client.responses.cancel(queued.id)).status == done.status
            # The runner counted how it ended, and runs nothing now.
            async with httpx.AsyncClient(base_url=gateway.url) as http:
                metrics = (await http.get("/metrics")).text
            ended = {"outcome": done.status}
            assert (
                metric_value(metrics, "switchyard_gateway_background_responses_total", ended) == 1
            )
            assert metric_value(metrics, "switchyard_gateway_background_running") == 0
        finally:
            await asyncio.to_thread(gateway.stop)


async def test_cancel_mid_generation(
    tmp_path: Path, worker: ServiceProcess, postgres_server: PostgresServer
) -> None:
    async with platform(tmp_path, worker, postgres_server) as p:
        gateway = await p.gateway()
        try:
            await subscribe(p, gateway)
            client = sdk(gateway)
            queued = await running_long(client, max_output_tokens=2000)
            cancelled = await client.responses.cancel(queued.id)
            assert cancelled.status == "cancelled"
            event = await p.event_for(queued.id)
            assert event["type"] == "response.cancelled"
            assert (await client.responses.cancel(queued.id)).status == "cancelled"
            # The worker's slot is free again: a plain turn is answered.
            after = await client.responses.create(model=MODEL, input="Hi", max_output_tokens=4)
            assert after.status in ("completed", "incomplete")
            assert (await client.responses.retrieve(queued.id)).status == "cancelled"
            # Cancelled once, announced once (the second cancel changed nothing).
            assert [e["data"]["id"] for e in p.events()].count(queued.id) == 1
        finally:
            await asyncio.to_thread(gateway.stop)


async def test_killed_gateway_leaves_it_to_the_next(
    tmp_path: Path, worker: ServiceProcess, postgres_server: PostgresServer
) -> None:
    async with platform(tmp_path, worker, postgres_server) as p:
        first = await p.gateway()
        try:
            await subscribe(p, first)
            client = sdk(first)
            queued = await running_long(client, max_output_tokens=300)
        finally:
            await asyncio.to_thread(first.stop, signal.SIGKILL)
        # Nobody ends it now: it stays in_progress on the session service until taken up.
        async with httpx.AsyncClient(base_url=p.session.url) as http:
            stored = await http.get(
                f"/v1/responses/{queued.id}",
                headers={
                    "authorization": f"Bearer {SESSION_TOKEN}",
                    "x-switchyard-tenant": "default",
                },
            )
        assert stored.json()["status"] == "in_progress"
        second = await p.gateway(free_port())
        try:
            event = await p.event_for(queued.id)
            assert event["type"] in ("response.completed", "response.incomplete",
                                     "response.failed")  # fmt: skip
            final = await sdk(second).responses.retrieve(queued.id)
            assert final.status == event["type"].removeprefix("response.")
        finally:
            await asyncio.to_thread(second.stop)
