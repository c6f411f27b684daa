"""Alembic migrations: run them (``python -m switchyard_webhook migrate``), or ask whether the
database's schema is at the newest revision (readiness is false while it is behind)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def schema_is_current(engine: AsyncEngine, head: str | None) -> bool:
    """Whether the database is at ``head`` (read straight from Alembic's version table)."""
    async with engine.connect() as connection:
        try:
            current = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return False  # never migrated
    return bool(current == head)
