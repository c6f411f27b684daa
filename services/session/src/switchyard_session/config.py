"""Session service settings (env prefix ``SWITCHYARD_SESSION_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings


class SessionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_SESSION_")

    service_name: str = "session"
    port: int = Field(default=8102, ge=0, le=65535)
    # Where this service keeps its durable state on a single machine.
    data_dir: Path = Path("./.switchyard/session")
    # SQLAlchemy async URL: postgresql+asyncpg://... in clusters. Unset: the embedded SQLite
    # database ``<data_dir>/session.db`` (see ``resolved_database_url``).
    database_url: SecretStr | None = None
    # Connections the pool keeps open (PostgreSQL), and how many more it may open under load.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    # A pooled connection idle this long is pinged before use (PostgreSQL); 0: always.
    database_ping_after_idle_seconds: float = Field(default=1.0, ge=0)
    # Run the Alembic migrations at startup (the embedded default under ``switchyard up``);
    # in clusters the chart's Job runs ``python -m switchyard_session migrate`` instead.
    auto_migrate: bool = False
    # Service-to-service bearer token the gateway sends; unset: no check (internal network).
    internal_token: SecretStr | None = None
    # Retention: a conversation or stored response expires this long after its last write;
    # unset: kept until deleted. Per-tenant values override the default.
    retention_ttl_seconds: float | None = Field(default=None, gt=0)
    retention_tenant_ttl_seconds: dict[str, float] = Field(default_factory=dict)
    # The background clean-up: how often it runs, and how many rows one batch deletes.
    cleanup_interval_seconds: float = Field(default=60.0, gt=0)
    cleanup_batch_size: int = Field(default=500, ge=1)

    # Background responses: a response claimed this many times without finishing (its
    # gateways died) is marked failed instead of being run again.
    background_max_attempts: int = Field(default=3, ge=1)
    # How often the background-response gauges (switchyard_session_background_*) are read
    # from the database.
    stats_interval_seconds: float = Field(default=15.0, gt=0)

    def resolved_database_url(self) -> str:
        """The database URL in use: the setting, or the embedded SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'session.db').resolve()}"
