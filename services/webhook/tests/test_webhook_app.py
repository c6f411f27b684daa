"""The webhook service app: starts, probes work, readiness follows its data dir."""

from __future__ import annotations

from typing import Any

import switchyard_webhook.__main__ as webhook_main
import switchyard_webhook.main as webhook_app
from switchyard_webhook.config import WebhookSettings
from tests.support.service_app import ServiceAppContract


class TestWebhookApp(ServiceAppContract):
    service = "webhook"
    prefix = "SWITCHYARD_WEBHOOK_"
    settings_cls = WebhookSettings
    create_app = staticmethod(webhook_app.create_app)
    main_module = webhook_main
    default_port = 8103
    env_port = 9303
    main_port = 9403
    request_id = "hook-1"
    extra_checks = ("database",)

    def settings(self, **values: Any) -> Any:
        # The SQLite file beside the data dir, which the contract checks stays empty.
        if "data_dir" in values and "database_url" not in values:
            values["database_url"] = f"sqlite+aiosqlite:///{values['data_dir']}.db"
        return super().settings(**values)
