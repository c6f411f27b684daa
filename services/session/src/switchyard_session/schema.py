"""The session database's tables (SQLAlchemy Core); Alembic's migrations create them.

Every row carries the tenant it belongs to, and every query filters on it. Items live in one
table for both kinds of owner: a conversation (``conv_…``) or a stored response (``resp_…``),
ordered within their owner by ``seq``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite autoincrements only an INTEGER PRIMARY KEY.
_BigKey = BigInteger().with_variant(Integer(), "sqlite")

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("metadata", JSON, nullable=False),
    # The next item's sequence number: appenders take a range from it under a row lock.
    Column("next_seq", BigInteger, nullable=False, default=0),
    # This conversation's own TTL (seconds); null: the tenant's or the default.
    Column("ttl_seconds", Float, nullable=True),
    Column("expires_at", Float, nullable=True),
    Index("ix_conversations_expires_at", "expires_at"),
)

# Which part of its owner an item belongs to.
SECTION_CONVERSATION = 0
SECTION_INPUT = 1
SECTION_OUTPUT = 2

items = Table(
    "items",
    metadata,
    Column("pk", _BigKey, primary_key=True, autoincrement=True),
    Column("tenant", String(255), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("section", SmallInteger, nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    # Cached token counts of this item, per model: {"<model>": <tokens>}.
    Column("tokens", JSON, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("owner_id", "seq", name="uq_items_owner_seq"),
    Index("ix_items_owner_item", "owner_id", "item_id"),
    Index("ix_items_owner_section_seq", "owner_id", "section", "seq"),
)

responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("previous_response_id", String(64), nullable=True),
    Column("conversation_id", String(64), nullable=True),
    # The Response object as the API returns it.
    Column("data", JSON, nullable=False),
    Column("expires_at", Float, nullable=True),
    # Background responses only (null otherwise): see claims.py.
    Column("status", String(32), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("owner", String(255), nullable=True),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    # The create request the runner replays (the turn's parameters).
    Column("request", JSON, nullable=True),
    Index("ix_responses_expires_at", "expires_at"),
    Index("ix_responses_status", "status"),
)

idempotency = Table(
    "idempotency_keys",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("status_code", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_idempotency_created_at", "created_at"),
)
