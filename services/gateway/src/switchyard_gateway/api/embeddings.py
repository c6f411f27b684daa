"""POST /v1/embeddings: forwarded to a model-worker instance serving embeddings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_gateway.api.deps import authenticate, gateway_of
from switchyard_gateway.handling import EMBEDDINGS

router = APIRouter(tags=["embeddings"])


async def create_embedding(request: Request) -> Response:
    # A plain Starlette route: the hot path skips FastAPI's dependency solving and body
    # models (the body is forwarded as bytes), which is most of the per-request cost.
    key = await authenticate(request)
    return await gateway_of(request).handle(request, key, EMBEDDINGS)


router.add_route("/v1/embeddings", create_embedding, methods=["POST"])
