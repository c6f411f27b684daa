"""Session service settings (env prefix ``SWITCHYARD_SESSION_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings


class SessionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_SESSION_")

    service_name: str = "session"
    port: int = Field(default=8102, ge=0, le=65535)
    # Where this service keeps its durable state on a single machine.
    data_dir: Path = Path("./.switchyard/session")
