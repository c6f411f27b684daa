"""Responses traffic counts like chat traffic: held to the gateway's in-flight bound (a stream
holds its slot until it is over; a WebSocket turn too), in the request metrics as route
``responses``, and its tokens in the token metrics and the tenant's usage."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import openai
import pytest

from services.webhook.tests.webhook_support import serve_app
from switchyard_cli.processes import ChildProcess
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.keys import hash_key
from switchyard_gateway.main import create_app as create_gateway
from tests.support.procs import free_port, metric_value

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-sy-resp-" + "a" * 24
ADMIN = "sk-sy-admin-" + "b" * 24


@pytest.fixture
def slow_upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A stub worker whose streams take seconds (200 events, 20 ms apart)."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "stub_upstream.py"), "--port", str(port),
            "--model", "stub-model", "--chunks", "200", "--chunk-delay-ms", "20"]  # fmt: skip
    child = ChildProcess("stub", argv, tmp_path / "stub.log").start()
    yield child.wait_ready(f"http://127.0.0.1:{port}/readyz", 30), port
    child.stop()


async def in_flight_drops_to(http: httpx.AsyncClient, value: float) -> None:
    """Wait (on the gauge, up to 10 s) until the gateway holds ``value`` slots."""
    async with asyncio.timeout(10):
        while True:
            text = (await http.get("/metrics")).text
            if metric_value(text, "switchyard_gateway_in_flight_requests") == value:
                return
            await asyncio.sleep(0.02)


async def test_responses_hold_slots_and_are_counted(slow_upstream) -> None:  # type: ignore[no-untyped-def]
    _, port = slow_upstream
    settings = GatewaySettings(
        static_workers=[{"url": f"http://127.0.0.1:{port}", "id": "stub"}],
        api_key_hashes=[hash_key(KEY)],
        admin_key_hashes=[hash_key(ADMIN)],
        max_in_flight=1,
        log_json=False,
    )
    async with (
        serve_app(create_gateway(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0) as client,
    ):
        stream = await client.responses.create(
            model="stub-model", input="hi", store=False, stream=True
        )
        events = stream.__aiter__()
        assert (await events.__anext__()).type == "response.created"
        # The open stream holds the gateway's only slot: the next request is refused.
        with pytest.raises(openai.APIStatusError) as busy:
            await client.responses.create(model="stub-model", input="hi", store=False)
        assert busy.value.status_code == 503
        assert busy.value.response.headers["retry-after"] == "1"
        # A turn over the WebSocket is held to the same bound.
        async with client.responses.connect() as socket:
            await socket.response.create(model="stub-model", input="hi")
            refused = await socket.recv()
        assert refused.type == "error" and refused.code == "overloaded"  # type: ignore[union-attr]
        await stream.close()  # the client leaves: the slot comes back
        await in_flight_drops_to(http, 0)

        reply = await client.responses.create(model="stub-model", input="hi", store=False)
        assert reply.status == "completed" and reply.usage is not None

        text = (await http.get("/metrics")).text
        requests = "switchyard_gateway_requests_total"
        labels = {"model": "stub-model", "route": "responses"}
        assert metric_value(text, requests, {**labels, "status": "200"}) == 2
        assert metric_value(text, requests, {**labels, "status": "503"}) == 2
        assert metric_value(text, "switchyard_gateway_backpressure_rejections_total",
                            {"scope": "gateway"}) == 2  # fmt: skip
        completion = {"model": "stub-model", "kind": "completion"}
        assert metric_value(text, "switchyard_gateway_tokens_total", completion) == (
            reply.usage.output_tokens
        )
        usage = (
            await http.get("/admin/v1/usage", headers={"authorization": f"Bearer {ADMIN}"})
        ).json()["data"]
        assert [(u["prompt_tokens"], u["completion_tokens"]) for u in usage] == [
            (reply.usage.input_tokens, reply.usage.output_tokens)
        ]
