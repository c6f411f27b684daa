"""POST /v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_model_worker import generation_requests, native_responses
from switchyard_model_worker.api.deps import RunnerDep, SettingsDep
from switchyard_model_worker.api.generation import serve
from switchyard_model_worker.native_responses import CHAT
from switchyard_model_worker.openai_requests import ChatCompletionRequest

router = APIRouter(tags=["chat"])
PATH = "/v1/chat/completions"


@router.post(PATH)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, runner: RunnerDep, settings: SettingsDep
) -> Response:
    async def native() -> Response:
        gen = generation_requests.to_generation_request(body, settings.default_max_tokens)
        return await native_responses.respond(
            request, runner, gen, CHAT, stream=bool(body.stream), include_usage=body.include_usage()
        )

    return await serve(
        request,
        runner,
        body,
        endpoint="chat_completions",
        capability="chat",
        path=PATH,
        native=native,
    )
