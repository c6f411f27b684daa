"""Discovery settings, one model per backend (fields of ``GatewaySettings``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class StaticInstanceConfig(BaseModel):
    """One entry of a static registry in settings."""

    url: str
    id: str | None = None
    models: list[str] = Field(default_factory=list)


class ConsulWatchSettings(BaseModel):
    """How the gateway watches Consul for worker instances."""

    model_config = ConfigDict(frozen=True)

    # Longest a blocking query is held open (Consul's ``wait``).
    wait_seconds: float = Field(default=30.0, gt=0, le=600)
    # Only instances with this tag (e.g. ``model=<name>``); empty: all passing instances.
    tag: str | None = None
    # Reconnect backoff while the agent is unreachable.
    retry_initial_seconds: float = Field(default=0.2, gt=0)
    retry_max_seconds: float = Field(default=5.0, gt=0)
    # How long ``start()`` waits for the first answer before serving with an empty view.
    initial_wait_seconds: float = Field(default=2.0, ge=0)


class KubernetesDiscoverySettings(BaseModel):
    """How the gateway watches EndpointSlices for worker instances (see docs/discovery.md)."""

    model_config = ConfigDict(frozen=True)

    # Namespace of the worker Service; empty: this pod's namespace (in cluster) or "default".
    namespace: str | None = None
    # Name of the EndpointSlice port to use; empty or absent: the first port.
    port_name: str | None = "http"
    scheme: str = "http"
    # Models every instance serves, known before probing (probes add the rest).
    models: list[str] = Field(default_factory=list)
    # API access: in-cluster service account by default; or a kubeconfig file; or a URL.
    kubeconfig: Path | None = None
    api_server: str | None = None
    watch_timeout_seconds: int = Field(default=60, ge=1)
    retry_initial_seconds: float = Field(default=0.2, gt=0)
    retry_max_seconds: float = Field(default=5.0, gt=0)
    initial_wait_seconds: float = Field(default=2.0, ge=0)
