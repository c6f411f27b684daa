"""GET /v1/models, /load (for load-aware routing) and /startupz (the startup probe)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from switchyard_common.errors import ModelNotFoundError, json_response
from switchyard_common.openai_schemas import Model, ModelList
from switchyard_model_worker.api.deps import RunnerDep

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(runner: RunnerDep) -> ModelList:
    return ModelList(data=[Model(id=runner.model_name)])


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, runner: RunnerDep) -> Model:
    if model_id != runner.model_name:
        raise ModelNotFoundError(model_id)
    return Model(id=runner.model_name)


@router.get("/load")
async def load(runner: RunnerDep) -> dict[str, Any]:
    """What this worker is doing now; ``engine_*`` is the engine's own report, when any."""
    report: dict[str, Any] = asdict(runner.admission.snapshot())
    if runner.engine_load is not None:
        report["engine_running"] = runner.engine_load.running
        report["engine_waiting"] = runner.engine_load.waiting
    return report


@router.get("/startupz", include_in_schema=False)
async def startupz(runner: RunnerDep) -> Response:
    """200 once the model has loaded; 503 while loading or after a failed load."""
    status = runner.status
    body = {"status": status.state, "seconds": status.seconds, "error": status.error}
    return json_response(body, 200 if status.state == "loaded" else 503)
