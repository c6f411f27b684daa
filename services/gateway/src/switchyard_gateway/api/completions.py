"""POST /v1/completions: forwarded to a model-worker instance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_gateway.api.deps import ApiKeyDep, GatewayDep
from switchyard_gateway.handling import COMPLETIONS

router = APIRouter(tags=["completions"])


@router.post("/v1/completions")
async def create_completion(request: Request, gateway: GatewayDep, key: ApiKeyDep) -> Response:
    return await gateway.handle(request, key, COMPLETIONS)
