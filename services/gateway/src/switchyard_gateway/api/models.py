"""GET /v1/models: what healthy workers serve right now (plus configured aliases)."""

from __future__ import annotations

from fastapi import APIRouter

from switchyard_common.errors import ModelNotFoundError
from switchyard_common.openai_schemas import Model, ModelList
from switchyard_gateway.api.deps import ApiKeyDep, PoolDep, SettingsDep

router = APIRouter(tags=["models"])


def _available(pool: PoolDep, settings: SettingsDep) -> list[str]:
    served = pool.models()
    aliases = [a for a, target in settings.model_aliases.items() if target in served]
    return sorted({*served, *aliases})


@router.get("/v1/models")
async def list_models(pool: PoolDep, settings: SettingsDep, _: ApiKeyDep) -> ModelList:
    return ModelList(data=[Model(id=m) for m in _available(pool, settings)])


@router.get("/v1/models/{model}")
async def retrieve_model(model: str, pool: PoolDep, settings: SettingsDep, _: ApiKeyDep) -> Model:
    if model not in _available(pool, settings):
        raise ModelNotFoundError(model)
    return Model(id=model)
