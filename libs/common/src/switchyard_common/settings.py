"""The pydantic-settings base class every service's config subclasses.

Each service defines one subclass with ``env_prefix="SWITCHYARD_<SERVICE>_"``; this is the
only place configuration is read from the environment.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ConsulSettings(BaseModel):
    """How to reach the local Consul agent (``<PREFIX>CONSUL__<FIELD>``). No address: off."""

    model_config = ConfigDict(frozen=True)

    # e.g. http://127.0.0.1:8500 or https://consul.local:8501; unset keeps Consul off.
    address: str | None = None
    token: SecretStr | None = None
    datacenter: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify: bool = True
    # Timeout of each non-blocking call to the agent.
    timeout_seconds: float = Field(default=5.0, gt=0)


class RegistrationSettings(BaseModel):
    """How this instance registers itself (``<PREFIX>REGISTRATION__<FIELD>``); see docs."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    # Name in Consul; defaults to the service name.
    service_name: str | None = None
    # Address and port others reach us on (pod IP from the Downward API); default: bind
    # host, or this host's IP when bound to all interfaces.
    advertise_address: str | None = None
    advertise_port: int | None = Field(default=None, ge=1, le=65535)
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, str] = Field(default_factory=dict)
    # Hardware this instance runs on (workers): sent as meta.
    gpu_type: str | None = None
    gpu_count: int = Field(default=0, ge=0)
    check_interval_seconds: float = Field(default=5.0, gt=0)
    check_timeout_seconds: float = Field(default=2.0, gt=0)
    deregister_critical_after_seconds: float = Field(default=60.0, gt=0)
    # Registration retries back off from the first to the max delay.
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=15.0, gt=0)
    # How often the agent is asked whether we are still registered (re-registers if not).
    resync_seconds: float = Field(default=30.0, gt=0)
    # After deregistering on shutdown, keep serving this long so watchers see it first.
    leave_delay_seconds: float = Field(default=1.0, ge=0)


class ServiceSettings(BaseSettings):
    """Settings shared by every service. Subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_",
        env_nested_delimiter="__",
        # An optional setting is unset (None) with the value "null", e.g. a retention of
        # "keep forever" from a chart's null.
        env_parse_none_str="null",
        extra="ignore",
        frozen=True,
    )

    service_name: str = "switchyard"
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Metrics (and health probes) on their own port, for Prometheus and the kubelet only:
    # /metrics is then not served on ``port``, and only /metrics, /healthz, /readyz and
    # /startupz are served on this one. Unset: all on ``port`` (``switchyard up``'s default).
    internal_port: int | None = Field(default=None, ge=1, le=65535)
    instance_id: str = Field(default_factory=socket.gethostname)
    log_level: LogLevel = "INFO"
    log_json: bool = True
    # OpenTelemetry: traces are exported over OTLP/HTTP only when an endpoint is set.
    otlp_endpoint: str | None = None
    # Fraction of new traces recorded; default: all when otlp_endpoint is set, else none.
    trace_sample_ratio: float | None = Field(default=None, ge=0, le=1)
    # Seconds allowed for in-flight requests to finish after SIGTERM.
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    # Consul registration (off unless consul.address is set).
    consul: ConsulSettings = Field(default_factory=ConsulSettings)
    registration: RegistrationSettings = Field(default_factory=RegistrationSettings)
