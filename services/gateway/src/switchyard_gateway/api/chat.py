"""POST /v1/chat/completions: forwarded to a model-worker instance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_common.disconnect import cancel_on_disconnect
from switchyard_gateway.api.deps import ApiKeyDep, ForwarderDep
from switchyard_gateway.proxy import parse_body

router = APIRouter(tags=["chat"], dependencies=[ApiKeyDep])


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request, forwarder: ForwarderDep) -> Response:
    raw = await request.body()
    body = parse_body(raw, required=("model", "messages"))
    return await cancel_on_disconnect(request, forwarder.forward("/v1/chat/completions", raw, body))
