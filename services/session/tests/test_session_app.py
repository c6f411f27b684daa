"""The session service app: starts, probes work, readiness follows its data dir."""

from __future__ import annotations

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
