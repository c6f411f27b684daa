"""POST /v1/chat/completions: forwarded to a model-worker instance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_gateway.api.deps import authenticate, gateway_of
from switchyard_gateway.handling import CHAT

router = APIRouter(tags=["chat"])


async def create_chat_completion(request: Request) -> Response:
    # A plain Starlette route: the hot path skips FastAPI's dependency solving and body
    # models (the body is forwarded as bytes), which is most of the per-request cost.
    key = await authenticate(request)
    return await gateway_of(request).handle(request, key, CHAT)


router.add_route("/v1/chat/completions", create_chat_completion, methods=["POST"])
