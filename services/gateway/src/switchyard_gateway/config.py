"""Gateway settings (env prefix ``SWITCHYARD_GATEWAY_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings
from switchyard_gateway.discovery.settings import (
    ConsulWatchSettings,
    KubernetesDiscoverySettings,
    StaticInstanceConfig,
)


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_GATEWAY_")

    service_name: str = "gateway"
    port: int = Field(default=8080, ge=0, le=65535)

    # --- discovery of model-worker instances
    discovery: Literal["static", "consul", "kubernetes"] = "static"
    static_workers: list[StaticInstanceConfig] = Field(default_factory=list)
    # consul / kubernetes: the workers' Consul service name, or their Kubernetes Service.
    worker_service: str = "model-worker"
    consul_watch: ConsulWatchSettings = Field(default_factory=ConsulWatchSettings)
    kubernetes: KubernetesDiscoverySettings = Field(default_factory=KubernetesDiscoverySettings)
    # How often instances are probed for health, load and the models they serve.
    probe_interval_seconds: float = Field(default=1.0, gt=0)
    probe_timeout_seconds: float = Field(default=2.0, gt=0)

    # --- routing
    routing_policy: Literal["least-loaded", "session-affinity", "round-robin"] = "least-loaded"
    # Request header carrying a conversation id for session affinity (else the `user` field).
    session_header: str = "x-session-id"
    # Names clients may use for a model: {"alias": "served-model"}.
    model_aliases: dict[str, str] = Field(default_factory=dict)
    # When no instance of a model can answer, try these models in order: {"model": ["fallback"]}.
    model_fallbacks: dict[str, list[str]] = Field(default_factory=dict)

    # --- resilience
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    first_byte_timeout_seconds: float = Field(default=60.0, gt=0)
    total_timeout_seconds: float = Field(default=600.0, gt=0)
    # Attempts per model of a fallback chain (the first one included).
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_base_seconds: float = Field(default=0.05, ge=0)
    retry_backoff_max_seconds: float = Field(default=1.0, ge=0)
    # No retry starts later than this after forwarding began.
    retry_deadline_seconds: float = Field(default=10.0, gt=0)
    breaker_fail_max: int = Field(default=3, ge=1)
    breaker_reset_seconds: float = Field(default=5.0, gt=0)

    # --- backpressure: bounded in-flight requests; beyond them answer 503 + Retry-After.
    max_in_flight: int = Field(default=1024, ge=1)
    max_in_flight_per_instance: int = Field(default=256, ge=1)
    # Largest request body accepted on the API routes (413 above it).
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)

    # --- API keys: a JSON key file (created by the admin API) and/or fixed digests.
    keys_file: Path | None = None
    # SHA-256 hex digests of keys accepted for tenant "default" (e.g. from a Secret).
    api_key_hashes: list[SecretStr] = Field(default_factory=list)
    # SHA-256 hex digests of admin keys, which may manage keys through /admin/v1/keys.
    admin_key_hashes: list[SecretStr] = Field(default_factory=list)

    # --- rate limits per key (0 = unlimited); a key's own limits override these.
    default_rpm: int = Field(default=0, ge=0)
    default_tpm: int = Field(default=0, ge=0)
    # Label the per-tenant usage metrics with the tenant (else all count as "all"); the
    # totals per tenant are always served by GET /admin/v1/usage.
    usage_tenant_label: bool = False

    # --- response cache for deterministic requests (opt-in per request or per key).
    cache_ttl_seconds: int = Field(default=300, ge=1)
    cache_max_entries: int = Field(default=10_000, ge=1)

    # Redis (e.g. redis://redis:6379/0) shares rate limits, breaker state and the cache
    # across gateway replicas; without it they live in memory (the embedded default).
    redis_url: SecretStr | None = None

    # The webhook service (e.g. http://webhook:8103): /v1/webhook_endpoints and
    # /v1/webhook_event_types are relayed to it, and breakers opening or closing are published
    # to it as switchyard.circuit.* events. Unset: those routes answer 404.
    webhook_url: str | None = None
    # The bearer token the webhook service requires (its SWITCHYARD_WEBHOOK_INTERNAL_TOKEN).
    webhook_token: SecretStr | None = None

    # --- stateful APIs (Conversations, Responses; see docs/session.md): the session service
    # keeping their state. Unset, they answer 503; stateless turns and chat still work.
    session_url: str | None = None
    # The token the session service requires (its SWITCHYARD_SESSION_INTERNAL_TOKEN).
    session_token: SecretStr | None = None
    # Background responses (background=true): the lease a runner holds on a claimed one
    # (renewed every third of it; another gateway takes it up once it ran out), how often an
    # idle runner asks for queued ones, and how many one gateway runs at once.
    background_lease_seconds: float = Field(default=30.0, gt=0)
    background_poll_seconds: float = Field(default=1.0, gt=0)
    background_concurrency: int = Field(default=4, ge=1)
