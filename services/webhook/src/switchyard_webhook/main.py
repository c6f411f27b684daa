"""The webhook app: ``create_app()`` builds it; the lifespan owns its resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from switchyard_common.app import create_service_app
from switchyard_common.readiness import writable_dir_check
from switchyard_webhook.config import WebhookSettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: WebhookSettings = app.state.settings
    app.state.readiness.add_check("data_dir", writable_dir_check(settings.data_dir))
    yield


def create_app(settings: WebhookSettings | None = None) -> FastAPI:
    return create_service_app(settings or WebhookSettings(), lifespan=lifespan)
