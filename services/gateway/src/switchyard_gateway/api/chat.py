"""POST /v1/chat/completions: forwarded to a model-worker instance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard_gateway.api.deps import gateway_of
from switchyard_gateway.handling import CHAT


async def create_chat_completion(request: Request) -> Response:
    # Served from the fast path (see main.FAST_ROUTES): no routing, dependency solving or
    # body model; the body is forwarded as bytes. The gateway checks the API key.
    return await gateway_of(request).handle(request, CHAT)
