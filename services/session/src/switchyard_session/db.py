"""The database engine: PostgreSQL through asyncpg, or the embedded SQLite through aiosqlite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from switchyard_session.config import SessionSettings


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns (items, responses) are encoded and decoded with orjson.
_JSON = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def _ping_idle_connections(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a connection at checkout only when it has been idle ``idle_seconds`` (as
    HikariCP's aliveBypassWindowMs): SQLAlchemy's pre-ping on asyncpg costs three round trips
    (BEGIN, ``;``, ROLLBACK) on every checkout, more than a one-item append's own statements.
    A dead idle connection is replaced (the pool retries with a new one). One that died
    since its last use within the window fails its request with 503, and SQLAlchemy then
    renews every connection the pool held before it."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    @event.listens_for(pool, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        record.info["used_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("used_at", 0.0) < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("connection lost while idle") from exc


def create_engine(url: str, settings: SessionSettings) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, a busy timeout and its directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            **_JSON,
        )
        _ping_idle_connections(engine, settings.database_ping_after_idle_seconds)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **_JSON)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


class Database:
    """The engine plus how to open a write transaction on it.

    SQLite allows one writer at a time, and a transaction that reads before it writes can
    fail instead of waiting; writes in this (the only) process are therefore serialized by a
    lock. PostgreSQL needs none: appenders serialize on the conversation's row lock.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed when the block ends, rolled back on an error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def single_write(self) -> AsyncIterator[AsyncConnection]:
        """A write of a single statement: on PostgreSQL it runs in autocommit, atomic and
        committed before its answer as any statement is, without the BEGIN and COMMIT round
        trips of a transaction; on SQLite (where it may be more) a write transaction."""
        if self._write_lock is not None:
            async with self.write() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()
