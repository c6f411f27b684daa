"""``python -m switchyard_session``: serve the session service;
``python -m switchyard_session migrate``: bring the database's schema up to date."""

from __future__ import annotations

import asyncio
import sys

from switchyard_common.server import serve
from switchyard_session import migrate
from switchyard_session.config import SessionSettings
from switchyard_session.db import create_engine
from switchyard_session.main import create_app


async def run_migrations(settings: SessionSettings) -> None:
    engine = create_engine(settings.resolved_database_url(), settings)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def main(args: list[str] | None = None) -> None:
    args = args or []
    settings = SessionSettings()
    if args == ["migrate"]:
        asyncio.run(run_migrations(settings))
        print(f"session database at revision {migrate.head_revision()}")
        return
    if args:
        sys.exit("usage: python -m switchyard_session [migrate]")
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    main(sys.argv[1:])
