"""Webhook service settings (env prefix ``SWITCHYARD_WEBHOOK_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings


class WebhookSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_WEBHOOK_")

    service_name: str = "webhook"
    port: int = Field(default=8103, ge=0, le=65535)
    # Where this service keeps its durable state on a single machine.
    data_dir: Path = Path("./.switchyard/webhook")
