"""POST /v1/completions (raw-text prompts, no chat template)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_model_worker import generation_requests, native_responses, relaying
from switchyard_model_worker.api.deps import RunnerDep, SettingsDep
from switchyard_model_worker.api.tracking import counted
from switchyard_model_worker.native_responses import TEXT
from switchyard_model_worker.openai_requests import CompletionRequest

router = APIRouter(tags=["completions"])
ENDPOINT = "completions"


@router.post("/v1/completions")
async def create_completion(
    body: CompletionRequest, request: Request, runner: RunnerDep, settings: SettingsDep
) -> Response:
    with counted(runner, ENDPOINT):
        runner.check_model(body.model, "completions")
        if runner.backend.relays:
            call = relaying.relay_call("/v1/completions", body)
            return await relaying.respond(request, runner, call)
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
