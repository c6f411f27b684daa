"""GET /v1/models and GET /load."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from switchyard_common.openai_schemas import Model, ModelList
from switchyard_model_worker.api.deps import EngineDep

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(engine: EngineDep) -> ModelList:
    return ModelList(data=[Model(id=engine.model_name)])


@router.get("/load")
async def load(engine: EngineDep) -> dict[str, int]:
    """What this worker is doing now, for load-aware routing."""
    return asdict(engine.admission.snapshot())
