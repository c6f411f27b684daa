"""The path every generation endpoint takes: count, check the model, relay or generate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Request
from starlette.responses import Response

from switchyard_model_worker import relaying
from switchyard_model_worker.api.tracking import counted
from switchyard_model_worker.model_runner import ModelRunner


async def serve(
    request: Request,
    runner: ModelRunner,
    body: Any,
    *,
    endpoint: str,
    capability: Literal["chat", "completions"],
    path: str,
    native: Callable[[], Awaitable[Response]],
) -> Response:
    """Relay ``body`` to the external engine when the backend relays; else ``native()``."""
    with counted(runner, endpoint):
        runner.check_model(body.model, capability)
        if runner.backend.relays:
            return await relaying.respond(request, runner, relaying.relay_call(path, body))
        return await native()
