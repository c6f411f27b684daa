"""Platform events from the gateway: a worker's circuit breaker opening and closing reaches
the operators' endpoints as ``switchyard.circuit.opened`` / ``switchyard.circuit.closed``."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

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
            settings = GatewaySettings(
                static_workers=[
                    {"url": f"http://127.0.0.1:{doomed_port}", "id": "doomed"},
                    {"url": f"http://127.0.0.1:{steady_port}", "id": "steady"},
                ],
                routing_policy="round-robin",
                probe_interval_seconds=60,  # only requests find out doomed is gone
                breaker_fail_max=2,
                breaker_reset_seconds=1,
                api_key_hashes=[hash_key(KEY)],
                webhook_url=hooks.url,
                webhook_token=TOKEN,
                log_json=False,
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
    finally:
        doomed.stop()
        steady.stop()
