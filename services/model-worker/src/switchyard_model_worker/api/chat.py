"""POST /v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_model_worker import generation_requests, native_responses, relaying
from switchyard_model_worker.api.deps import RunnerDep, SettingsDep
from switchyard_model_worker.api.tracking import counted
from switchyard_model_worker.native_responses import CHAT
from switchyard_model_worker.openai_requests import ChatCompletionRequest

router = APIRouter(tags=["chat"])
ENDPOINT = "chat_completions"


@router.post("/v1/chat/completions")
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, runner: RunnerDep, settings: SettingsDep
) -> Response:
    with counted(runner, ENDPOINT):
        runner.check_model(body.model, "chat")
        if runner.backend.relays:
            call = relaying.relay_call("/v1/chat/completions", body)
            return await relaying.respond(request, runner, call)
        gen = generation_requests.to_generation_request(body, settings.default_max_tokens)
        return await native_responses.respond(
            request, runner, gen, CHAT, stream=bool(body.stream), include_usage=body.include_usage()
        )
