"""The webhook service's tables (SQLAlchemy Core); Alembic's migrations create them.

Times are Unix seconds as floats. A delivery is one event for one endpoint: ``pending``
until claimed, ``delivering`` while a dispatcher holds its lease (``next_attempt_at`` is the
lease's end, so a dead dispatcher's claim becomes due again), then ``succeeded`` or
``dead_letter``; failed attempts put it back to ``pending`` with a later ``next_attempt_at``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # enabled | disabled
    Column("secret", String(128), nullable=False),
    Column("previous_secret", String(128)),
    Column("previous_secret_expires_at", Float),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("failing_since", Float),
    Column("disabled_reason", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_webhook_endpoints_tenant_id", "tenant", "id"),
)

events = Table(
    "webhook_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Column("type", String(128), nullable=False),
    # The exact JSON body every delivery of this event sends (and signs).
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Column("event_id", String(64), ForeignKey("webhook_events.id", ondelete="CASCADE")),
    Column(
        "endpoint_id",
        String(64),
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("claim_token", String(64)),
    Column("last_status_code", Integer),
    Column("last_latency_ms", Float),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_tenant_endpoint", "tenant", "endpoint_id", "created_at"),
)
