"""POST /v1/embeddings: forwarded to a model-worker instance serving embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_gateway.api.deps import ApiKeyDep, GatewayDep
from switchyard_gateway.handling import EMBEDDINGS

router = APIRouter(tags=["embeddings"])


@router.post("/v1/embeddings")
async def create_embedding(request: Request, gateway: GatewayDep, key: ApiKeyDep) -> Response:
    return await gateway.handle(request, key, EMBEDDINGS)
