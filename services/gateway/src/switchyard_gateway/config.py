"""Gateway settings (env prefix ``SWITCHYARD_GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from switchyard_common.discovery import (
    ConsulWatchSettings,
    KubernetesDiscoverySettings,
    StaticInstanceConfig,
)
from switchyard_common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_GATEWAY_")

    service_name: str = "gateway"
    port: int = Field(default=8080, ge=0, le=65535)

    # Discovery of model-worker instances.
    discovery: Literal["static", "consul", "kubernetes"] = "static"
    static_workers: list[StaticInstanceConfig] = Field(default_factory=list)
    # consul / kubernetes: the workers' Consul service name, or their Kubernetes Service.
    worker_service: str = "model-worker"
    consul_watch: ConsulWatchSettings = Field(default_factory=ConsulWatchSettings)
    kubernetes: KubernetesDiscoverySettings = Field(default_factory=KubernetesDiscoverySettings)
    # How often instances are probed for health and the models they serve.
    probe_interval_seconds: float = Field(default=2.0, gt=0)
    probe_timeout_seconds: float = Field(default=1.0, gt=0)

    routing_policy: Literal["round-robin"] = "round-robin"

    # API keys: SHA-256 hex digests, from settings and/or a file with one digest per line.
    api_key_hashes: list[SecretStr] = Field(default_factory=list)
    api_keys_file: Path | None = None

    # Upstream timeouts (seconds): connect, first byte, and the whole response.
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    first_byte_timeout_seconds: float = Field(default=60.0, gt=0)
    total_timeout_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
