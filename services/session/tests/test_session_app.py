"""The session service app: starts, probes work, readiness follows its data dir."""

from __future__ import annotations

from typing import Any

import pytest

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
