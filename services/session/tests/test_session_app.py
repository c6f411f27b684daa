"""The session service app: starts, probes work, readiness follows its data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import switchyard_session.__main__ as session_main
import switchyard_session.main as session_app
from switchyard_session.config import SessionSettings
from tests.support.service_app import ServiceAppContract


class TestSessionApp(ServiceAppContract):
    service = "session"
    prefix = "SWITCHYARD_SESSION_"
    settings_cls = SessionSettings
    create_app = staticmethod(session_app.create_app)
    main_module = session_main
    default_port = 8102
    env_port = 9302
    main_port = 9402
    request_id = "sess-1"
    extra_checks = ("database",)

    @pytest.fixture(autouse=True)
    def migrate_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The embedded database is migrated at start (as under ``switchyard up``)."""
        monkeypatch.setenv(self.prefix + "AUTO_MIGRATE", "true")

    def settings(self, **values: Any) -> Any:
        # The database file beside the data dir, which the contract checks stays empty.
        if "data_dir" in values and "database_url" not in values:
            values["database_url"] = f"sqlite+aiosqlite:///{values['data_dir']}.db"
        return super().settings(**values)


def test_not_ready_until_migrated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without auto_migrate the service waits for ``migrate`` (the chart's Job) to run."""
    monkeypatch.delenv("SWITCHYARD_SESSION_AUTO_MIGRATE", raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'session.db'}"
    settings = SessionSettings(data_dir=tmp_path / "data", database_url=url)
    with TestClient(session_app.create_app(settings)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["database"] is False
        monkeypatch.setenv("SWITCHYARD_SESSION_DATABASE_URL", url)
        session_main.main(["migrate"])
        assert client.get("/readyz").status_code == 200
