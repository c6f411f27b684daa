"""Health, readiness and metrics on every service of a running platform."""

from __future__ import annotations

import httpx
import pytest

from tests.support.fixtures import Platform


@pytest.mark.parametrize("service", ["gateway", "worker", "session", "webhook"])
def test_health_ready_and_metrics(platform: Platform, service: str) -> None:
    url = getattr(platform, service)
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert all(body["checks"].values())
    metrics = httpx.get(f"{url}/metrics")
    assert metrics.status_code == 200
    assert "_http_requests_total" in metrics.text


def test_health_endpoints_need_no_key_but_api_does(platform: Platform) -> None:
    assert httpx.get(f"{platform.gateway}/healthz").status_code == 200
    assert httpx.get(f"{platform.gateway}/v1/models").status_code == 401


def test_request_id_is_echoed_and_generated(platform: Platform) -> None:
    headers = {"Authorization": f"Bearer {platform.api_key}", "x-request-id": "req-123"}
    r = httpx.get(f"{platform.base_url}/models", headers=headers)
    assert r.headers["x-request-id"] == "req-123"
    generated = httpx.get(
        f"{platform.base_url}/models", headers={"Authorization": headers["Authorization"]}
    )
    assert len(generated.headers["x-request-id"]) == 32
