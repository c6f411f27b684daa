"""Webhook service settings (env prefix ``SWITCHYARD_WEBHOOK_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings

# Standard Webhooks' schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# 10 h (about 28 h in all); operators stretch it towards OpenAI's 72 h if they like.
DEFAULT_RETRY_SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class WebhookSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_WEBHOOK_")

    service_name: str = "webhook"
    port: int = Field(default=8103, ge=0, le=65535)
    # Where this service keeps its durable state on a single machine.
    data_dir: Path = Path("./.switchyard/webhook")

    # --- storage
    # SQLAlchemy async URL: postgresql+asyncpg://... in clusters. Unset: the embedded SQLite
    # database ``<data_dir>/webhook.db`` (see ``resolved_database_url``).
    database_url: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    # Run the Alembic migrations at startup. Unset: yes for an SQLite database, no for
    # PostgreSQL (in clusters the chart's Job runs ``python -m switchyard_webhook
    # migrate``); readiness stays false while the schema is behind.
    auto_migrate: bool | None = None

    # --- auth between services
    # Bearer token the gateway and publishing services send on every /v1 and /internal route;
    # unset: no check (the embedded default binds 127.0.0.1 only).
    internal_token: SecretStr | None = None

    # --- dispatcher
    # Run the dispatcher in this process (replicas may run API only, or both).
    dispatcher_enabled: bool = True
    # Deliveries in flight at once per process, and claimed per round trip to the database.
    dispatcher_concurrency: int = Field(default=64, ge=1)
    dispatcher_batch_size: int = Field(default=100, ge=1)
    # How long an idle dispatcher waits before looking for due deliveries again.
    dispatcher_poll_seconds: float = Field(default=0.5, gt=0)
    # A claimed delivery not finished within this (dispatcher died) is claimed again.
    dispatcher_lease_seconds: float = Field(default=60.0, gt=0)
    # Seconds to wait before each retry; after the last one a delivery is dead-lettered.
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE)
    )
    # Each wait is drawn uniformly within +/- this fraction of the schedule's value.
    retry_jitter: float = Field(default=0.2, ge=0, le=1)

    # --- per endpoint
    endpoint_timeout_seconds: float = Field(default=10.0, gt=0)
    endpoint_concurrency: int = Field(default=8, ge=1)
    # Response bodies are read up to this many bytes (the rest is discarded).
    max_response_bytes: int = Field(default=64 * 1024, ge=0)
    # An endpoint whose attempts failed this many times in a row, the first of them at
    # least ``auto_disable_after_seconds`` ago, is disabled (0 failures: never).
    auto_disable_failures: int = Field(default=100, ge=0)
    auto_disable_after_seconds: float = Field(default=24 * 3600.0, ge=0)
    # How long the previous secret keeps signing after ``rotate_secret`` asks for a grace.
    rotation_grace_seconds: float = Field(default=24 * 3600.0, ge=0)

    # Events (and their deliveries) older than this are deleted once none of their
    # deliveries is still pending; unset: kept forever.
    retention_seconds: float | None = Field(default=30 * 24 * 3600.0, gt=0)

    # --- SSRF: targets resolving into these networks may be used, over HTTP too; anything
    # else must be HTTPS to a public address. The embedded default allows localhost only;
    # clusters set it empty.
    egress_allow_cidrs: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])

    # --- publishing: platform events (switchyard.*) published without a tenant go to the
    # endpoints of this tenant (the operators').
    operator_tenant: str = "default"

    def migrates_at_start(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.resolved_database_url().startswith("sqlite")

    def resolved_database_url(self) -> str:
        """The database URL in use: the setting, or the embedded SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'webhook.db').resolve()}"
