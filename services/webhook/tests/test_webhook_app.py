"""The webhook service app: starts, probes work, readiness follows its data dir."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

import switchyard_webhook.__main__ as webhook_main
from switchyard_webhook.config import WebhookSettings
from switchyard_webhook.main import create_app

SERVICE = "webhook"
PREFIX = "SWITCHYARD_WEBHOOK_"


@pytest.fixture(autouse=True)
def isolate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """create_app reconfigures the root logger; put it back, and keep env from leaking in."""
    for name in ("PORT", "DATA_DIR", "LOG_LEVEL", "HOST", "SERVICE_NAME"):
        monkeypatch.delenv(PREFIX + name, raising=False)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / SERVICE


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(WebhookSettings(data_dir=data_dir))) as c:
        yield c


def test_lifespan_creates_data_dir(client: TestClient, data_dir: Path) -> None:
    assert data_dir.is_dir()
    # The readiness probe leaves nothing behind.
    client.get("/readyz")
    assert list(data_dir.iterdir()) == []


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_ready_with_data_dir_check(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"data_dir": True, "accepting": True}}


def test_readyz_not_ready_when_data_dir_unwritable(client: TestClient, data_dir: Path) -> None:
    assert client.get("/readyz").status_code == 200
    shutil.rmtree(data_dir)
    data_dir.write_text("not a directory any more")
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "not_ready", "checks": {"data_dir": False, "accepting": True}}


def test_readyz_recovers_when_data_dir_is_back(client: TestClient, data_dir: Path) -> None:
    shutil.rmtree(data_dir)
    assert client.get("/readyz").status_code == 503
    data_dir.mkdir()
    assert client.get("/readyz").status_code == 200


def test_readyz_not_ready_after_shutdown(data_dir: Path) -> None:
    client = TestClient(create_app(WebhookSettings(data_dir=data_dir)))
    with client:
        assert client.get("/readyz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["accepting"] is False


def test_metrics(client: TestClient) -> None:
    client.get("/nope")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert f"# TYPE switchyard_{SERVICE}_http_requests_total counter" in r.text
    labels = 'method="GET",route="unmatched",status="404"'
    assert f"switchyard_{SERVICE}_http_requests_total{{{labels}}} 1.0" in r.text


def test_unknown_route_is_openai_error_with_request_id(client: TestClient) -> None:
    r = client.get("/v1/nothing", headers={"x-request-id": "hook-1"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.headers["x-request-id"] == "hook-1"


def test_settings_defaults() -> None:
    s = WebhookSettings()
    assert s.service_name == SERVICE
    assert s.port == 8103
    assert s.data_dir == Path("./.switchyard/webhook")


def test_settings_read_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PREFIX + "PORT", "9303")
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("SWITCHYARD_PORT", "1")  # the base prefix is not used
    s = WebhookSettings()
    assert s.port == 9303
    assert s.data_dir == tmp_path / "from-env"


def test_settings_validate_and_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFIX + "PORT", "70000")
    with pytest.raises(ValidationError):
        WebhookSettings()
    monkeypatch.delenv(PREFIX + "PORT")
    s = WebhookSettings()
    with pytest.raises(ValidationError):
        s.port = 1  # type: ignore[misc]


def test_create_app_without_settings_reads_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "env-dir"))
    app = create_app()
    assert app.state.settings.data_dir == tmp_path / "env-dir"
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
    assert (tmp_path / "env-dir").is_dir()


def test_main_serves_with_env_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PREFIX + "PORT", "9403")
    monkeypatch.setenv(PREFIX + "DATA_DIR", str(tmp_path / "d"))
    calls = []
    monkeypatch.setattr(webhook_main, "serve", lambda factory, s: calls.append((factory(), s)))
    webhook_main.main()
    ((app, settings),) = calls
    assert settings.port == 9403
    assert app.state.settings is settings
