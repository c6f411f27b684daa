"""Metrics stay private: with an internal port, /metrics is served there and not on the
public port, and the internal port serves nothing but metrics and health."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support.procs import ServiceProcess, free_port


def test_metrics_only_on_the_internal_port(tmp_path: Path) -> None:
    public, internal = free_port(), free_port()
    env = {
        "SWITCHYARD_GATEWAY_PORT": str(public),
        "SWITCHYARD_GATEWAY_INTERNAL_PORT": str(internal),
        "SWITCHYARD_GATEWAY_STATIC_WORKERS": json.dumps([]),
        "SWITCHYARD_GATEWAY_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    proc = ServiceProcess("switchyard_gateway", env, tmp_path / "gateway.log", public,
                          ready_path="/healthz")  # fmt: skip
    try:
        proc.wait_ready()
        inside = f"http://127.0.0.1:{internal}"
        assert httpx.get(f"{proc.url}/metrics").status_code == 404
        assert httpx.get(f"{proc.url}/healthz").status_code == 200
        assert httpx.get(f"{proc.url}/v1/models").status_code == 401  # the API, keyed
        metrics = httpx.get(f"{inside}/metrics")
        assert metrics.status_code == 200 and "switchyard_gateway_requests_total" in metrics.text
        assert httpx.get(f"{inside}/healthz").status_code == 200
        for path in ("/v1/models", "/admin/v1/keys", "/v1/chat/completions"):
            r = httpx.post(f"{inside}{path}") if "chat" in path else httpx.get(f"{inside}{path}")
            assert r.status_code == 404, path
            assert r.json()["error"]["type"]  # OpenAI error JSON
    finally:
        proc.stop()
