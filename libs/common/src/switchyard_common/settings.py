"""The pydantic-settings base class every service's config subclasses.

Each service defines one subclass with ``env_prefix="SWITCHYARD_<SERVICE>_"``; this is the
only place configuration is read from the environment.
"""

from __future__ import annotations

import socket
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ServiceSettings(BaseSettings):
    """Settings shared by every service. Subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    service_name: str = "switchyard"
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    instance_id: str = Field(default_factory=socket.gethostname)
    log_level: LogLevel = "INFO"
    log_json: bool = True
    # OpenTelemetry: traces are exported over OTLP/HTTP only when an endpoint is set.
    otlp_endpoint: str | None = None
    # Seconds allowed for in-flight requests to finish after SIGTERM.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
