"""Platform events from the gateway reach the operators' endpoints: a worker's circuit breaker
opening and closing (``switchyard.circuit.opened`` / ``closed``), and a worker turning
unhealthy and ready again (``switchyard.worker.unhealthy`` / ``ready``)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from services.webhook.tests.webhook_support import (
    Receiver,
    fast_settings,
    run_receiver,
    serve_app,
    webhook_service,
)
from switchyard_cli.processes import ChildProcess
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.keys import hash_key
from switchyard_gateway.main import create_app as create_gateway
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-sy-ops-" + "e" * 24
TOKEN = "internal-" + "f" * 24
CHAT = {"model": "stub-model", "messages": [{"role": "user", "content": "hi"}]}


def stub(tmp_path: Path, port: int) -> ChildProcess:
    argv = [sys.executable, str(ROOT / "bench" / "stub_upstream.py"), "--port", str(port),
            "--model", "stub-model"]  # fmt: skip
    child = ChildProcess(f"stub-{port}", argv, tmp_path / f"stub-{port}.log").start()
    return child.wait_ready(f"http://127.0.0.1:{port}/readyz", 30)


def circuit_events(receiver: Receiver) -> list[tuple[str, str]]:
    events = [json.loads(r.body) for r in receiver.accepted]
    return [(e["type"], e["data"]["instance"]) for e in events]


def gateway_settings(hooks_url: str, ports: dict[str, int], **values: Any) -> GatewaySettings:
    return GatewaySettings(
        static_workers=[{"url": f"http://127.0.0.1:{p}", "id": name} for name, p in ports.items()],
        api_key_hashes=[hash_key(KEY)],
        webhook_url=hooks_url,
        webhook_token=TOKEN,
        instance_id="gateway-0",
        log_json=False,
        **values,
    )


async def test_breaker_changes_reach_the_operators_endpoints(tmp_path: Path) -> None:
    doomed_port, steady_port = free_port(), free_port()
    doomed, steady = stub(tmp_path, doomed_port), stub(tmp_path, steady_port)
    hook_settings = fast_settings(tmp_path / "webhook", internal_token=TOKEN)
    try:
        async with run_receiver() as receiver, webhook_service(hook_settings) as hooks:
            hooks.tenant = "default"  # the operators' tenant
            await hooks.client(token=TOKEN).webhooks.create(
                name="ops",
                url=receiver.url,
                event_types=["switchyard.circuit.opened", "switchyard.circuit.closed"],
            )
            settings = gateway_settings(
                hooks.url,
                {"doomed": doomed_port, "steady": steady_port},
                routing_policy="round-robin",
                probe_interval_seconds=60,  # only requests find out doomed is gone
                breaker_fail_max=2,
                breaker_reset_seconds=1,
            )
            async with (
                serve_app(create_gateway(settings)) as gateway,
                httpx.AsyncClient(base_url=gateway, timeout=30) as http,
            ):
                auth = {"authorization": f"Bearer {KEY}"}
                assert (await http.post("/v1/chat/completions", json=CHAT, headers=auth)).is_success
                doomed.stop()

                async def until(event: tuple[str, str]) -> None:
                    for _ in range(200):
                        r = await http.post("/v1/chat/completions", json=CHAT, headers=auth)
                        assert r.status_code == 200, r.text  # retried on the steady one
                        with contextlib.suppress(TimeoutError):
                            await receiver.wait_for(
                                lambda rc: event in circuit_events(rc), timeout=0.1
                            )
                            return
                    raise AssertionError(f"no {event} among {circuit_events(receiver)}")

                await until(("switchyard.circuit.opened", "doomed"))
                doomed = stub(tmp_path, doomed_port)
                await until(("switchyard.circuit.closed", "doomed"))
                seen = circuit_events(receiver)
                assert seen[0] == ("switchyard.circuit.opened", "doomed")
                assert seen[-1] == ("switchyard.circuit.closed", "doomed")
                first = json.loads(receiver.accepted[0].body)
                assert first["data"]["gateway"] == "gateway-0"
    finally:
        doomed.stop()
        steady.stop()


async def test_a_worker_going_down_and_up_is_told_to_the_operators(tmp_path: Path) -> None:
    port = free_port()
    worker = stub(tmp_path, port)
    hook_settings = fast_settings(tmp_path / "webhook", internal_token=TOKEN)
    try:
        async with run_receiver() as receiver, webhook_service(hook_settings) as hooks:
            hooks.tenant = "default"  # the operators' tenant
            endpoint = await hooks.client(token=TOKEN).webhooks.create(
                name="ops",
                url=receiver.url,
                event_types=["switchyard.worker.ready", "switchyard.worker.unhealthy"],
            )
            settings = gateway_settings(hooks.url, {"w0": port}, probe_interval_seconds=0.1)
            async with serve_app(create_gateway(settings)):
                worker.stop()  # the probes find it gone: two failures in a row
                await receiver.wait_accepted(1)
                worker = stub(tmp_path, port)
                await receiver.wait_accepted(2)
            client = hooks.client(token=TOKEN)
            down, up = (
                client.webhooks.unwrap(r.body, r.headers, secret=endpoint.signing_secret)
                for r in receiver.accepted[:2]
            )
            # Ready at the gateway's start was its baseline, not an event: down, then up.
            assert (down.type, up.type) == (
                "switchyard.worker.unhealthy",
                "switchyard.worker.ready",
            )
            bodies = [json.loads(r.body)["data"] for r in receiver.accepted[:2]]
            assert bodies[0] == {
                "instance": "w0",
                "models": ["stub-model"],
                "gateway": "gateway-0",
                "reason": "probe_failed",
            }
            assert bodies[1] == {"instance": "w0", "models": ["stub-model"], "gateway": "gateway-0"}
    finally:
        worker.stop()
