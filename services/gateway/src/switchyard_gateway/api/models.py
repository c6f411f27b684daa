"""GET /v1/models: what healthy workers serve right now."""

from __future__ import annotations

from fastapi import APIRouter

from switchyard_common.errors import ModelNotFoundError
from switchyard_common.openai_schemas import Model, ModelList
from switchyard_gateway.api.deps import ApiKeyDep, PoolDep

router = APIRouter(tags=["models"], dependencies=[ApiKeyDep])


@router.get("/v1/models")
async def list_models(pool: PoolDep) -> ModelList:
    return ModelList(data=[Model(id=m) for m in pool.models()])


@router.get("/v1/models/{model}")
async def retrieve_model(model: str, pool: PoolDep) -> Model:
    if model not in pool.models():
        raise ModelNotFoundError(model)
    return Model(id=model)
