"""POST /v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from switchyard_common.disconnect import cancel_on_disconnect
from switchyard_common.errors import json_response
from switchyard_common.openai_schemas import ChatCompletionRequest
from switchyard_common.sse import SSE_HEADERS
from switchyard_model_worker import chat
from switchyard_model_worker.api.deps import EngineDep, SettingsDep

router = APIRouter(tags=["chat"])
ENDPOINT = "chat_completions"


@router.post("/v1/chat/completions")
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, engine: EngineDep, settings: SettingsDep
) -> Response:
    engine.check_model(body.model)
    gen = chat.to_generation_request(body, settings.default_max_tokens)
    try:
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = await cancel_on_disconnect(
                request, chat.open_stream(engine, gen, include_usage)
            )
            response: Response = StreamingResponse(
                stream, media_type="text/event-stream", headers=SSE_HEADERS
            )
        else:
            response = json_response(
                await cancel_on_disconnect(request, chat.complete(engine, gen))
            )
    except Exception as exc:
        engine.metrics.requests.labels(ENDPOINT, str(getattr(exc, "status_code", 500))).inc()
        raise
    engine.metrics.requests.labels(ENDPOINT, "200").inc()
    return response
