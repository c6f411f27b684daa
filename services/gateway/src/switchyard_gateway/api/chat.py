"""POST /v1/chat/completions: forwarded to a model-worker instance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_gateway.api.deps import ApiKeyDep, GatewayDep
from switchyard_gateway.handling import CHAT

router = APIRouter(tags=["chat"])


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request, gateway: GatewayDep, key: ApiKeyDep) -> Response:
    return await gateway.handle(request, key, CHAT)
