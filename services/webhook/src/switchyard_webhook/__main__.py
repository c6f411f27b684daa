"""``python -m switchyard_webhook``: serve the webhook service; ``... migrate``: migrate its
database to the newest schema and exit."""

from __future__ import annotations

import asyncio
import sys

from switchyard_common.server import serve
from switchyard_webhook.config import WebhookSettings
from switchyard_webhook.main import create_app


async def _migrate(settings: WebhookSettings) -> None:
    from switchyard_webhook import migrate
    from switchyard_webhook.db import create_engine

    engine = create_engine(settings)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    settings = WebhookSettings()
    if args[:1] == ["migrate"]:
        asyncio.run(_migrate(settings))
        print(f"webhook database migrated to {_head()}")
        return
    serve(lambda: create_app(settings), settings)


def _head() -> str | None:
    from switchyard_webhook.migrate import head_revision

    return head_revision()


if __name__ == "__main__":
    main()
