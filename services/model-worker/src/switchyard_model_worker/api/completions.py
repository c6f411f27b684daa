"""POST /v1/completions (raw-text prompts, no chat template)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from switchyard_common.disconnect import cancel_on_disconnect
from switchyard_common.errors import json_response
from switchyard_common.openai_schemas import CompletionRequest
from switchyard_common.sse import SSE_HEADERS
from switchyard_model_worker import chat, native, relaying
from switchyard_model_worker.api.deps import EngineDep, SettingsDep
from switchyard_model_worker.api.tracking import counted

router = APIRouter(tags=["completions"])
ENDPOINT = "completions"


@router.post("/v1/completions")
async def create_completion(
    body: CompletionRequest, request: Request, engine: EngineDep, settings: SettingsDep
) -> Response:
    with counted(engine, ENDPOINT):
        engine.check_model(body.model, "completions")
        if engine.backend.relays:
            call = relaying.relay_call("/v1/completions", body)
            return await relaying.respond(request, engine, call)
        gen = chat.completion_to_generation_request(body, settings.default_max_tokens)
        prefix = gen.prompt if body.echo and gen.prompt else ""
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = await cancel_on_disconnect(
                request, native.open_stream(engine, gen, native.TEXT, include_usage, prefix)
            )
            return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
        whole = await cancel_on_disconnect(
            request, native.complete(engine, gen, native.TEXT, prefix)
        )
        return json_response(whole)
