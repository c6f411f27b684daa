"""POST /v1/completions (raw-text prompts, no chat template)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_model_worker import generation_requests, native_responses
from switchyard_model_worker.api.deps import RunnerDep, SettingsDep
from switchyard_model_worker.api.generation import serve
from switchyard_model_worker.native_responses import TEXT
from switchyard_model_worker.openai_requests import CompletionRequest

router = APIRouter(tags=["completions"])
PATH = "/v1/completions"


@router.post(PATH)
async def create_completion(
    body: CompletionRequest, request: Request, runner: RunnerDep, settings: SettingsDep
) -> Response:
    async def native() -> Response:
        gen = generation_requests.completion_to_generation_request(
            body, settings.default_max_tokens
        )
        prefix = gen.prompt if body.echo and gen.prompt else ""
        return await native_responses.respond(
            request,
            runner,
            gen,
            TEXT,
            stream=bool(body.stream),
            include_usage=body.include_usage(),
            prefix=prefix,
        )

    return await serve(
        request,
        runner,
        body,
        endpoint="completions",
        capability="completions",
        path=PATH,
        native=native,
    )
