"""Graceful stop: pre-stop hooks run on SIGTERM while the server still accepts requests.

uvicorn closes its listening socket and drains in-flight requests before the lifespan's
shutdown runs, which is too late to leave a registry. ``GracefulServer`` first runs the
app's ``app.state.pre_stop`` hooks (mark not-ready, deregister from Consul, wait for
watchers), then lets uvicorn stop accepting, drain and run the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

PreStopHook = Callable[[], Awaitable[None]]


async def run_pre_stop(app: FastAPI, seconds: float) -> None:
    """Run the app's pre-stop hooks in order, within ``seconds`` in all."""
    hooks: list[PreStopHook] = getattr(app.state, "pre_stop", [])

    async def run_all() -> None:
        for hook in hooks:
            try:
                await hook()
            except Exception:
                log.exception("pre-stop hook failed")

    try:
        await asyncio.wait_for(run_all(), seconds)
    except TimeoutError:
        log.warning("pre-stop hooks did not finish within %.1fs", seconds)


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, pre_stop_timeout: float) -> None:
        super().__init__(config)
        self.app = app
        self.pre_stop_timeout = pre_stop_timeout

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if not self.force_exit:
            await run_pre_stop(self.app, self.pre_stop_timeout)
        await super().shutdown(sockets)
