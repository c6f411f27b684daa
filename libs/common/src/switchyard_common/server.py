"""Run a service app under uvicorn with uvloop and httptools."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from switchyard_common.settings import ServiceSettings


def serve(create_app: Callable[[], FastAPI], settings: ServiceSettings) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get ``shutdown_grace_seconds``."""
    uvicorn.run(
        create_app(),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        server_header=False,
    )
