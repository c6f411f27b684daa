"""The session app: ``create_app()`` builds it; the lifespan owns its resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from switchyard_common.app import create_service_app
from switchyard_session.config import SessionSettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: SessionSettings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def data_dir_writable() -> bool:
        probe = settings.data_dir / ".ready-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
        return True

    app.state.readiness.add_check("data_dir", data_dir_writable)
    yield


def create_app(settings: SessionSettings | None = None) -> FastAPI:
    return create_service_app(settings or SessionSettings(), lifespan=lifespan)
