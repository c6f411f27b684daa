"""GET /v1/models: what healthy workers serve right now (plus configured aliases)."""

from __future__ import annotations

from fastapi import APIRouter

from switchyard_common.errors import ModelNotFoundError
from switchyard_common.openai_schemas import Model, ModelList
from switchyard_gateway.api.deps import ApiKeyDep, GatewayDep, PoolDep

router = APIRouter(tags=["models"])


def _available(pool: PoolDep, gateway: GatewayDep) -> list[str]:
    served = pool.models()
    aliases = [a for a, target in gateway.forwarder.aliases.items() if target in served]
    return sorted({*served, *aliases})


@router.get("/v1/models")
async def list_models(pool: PoolDep, gateway: GatewayDep, _: ApiKeyDep) -> ModelList:
    return ModelList(data=[Model(id=m) for m in _available(pool, gateway)])


@router.get("/v1/models/{model}")
async def retrieve_model(model: str, pool: PoolDep, gateway: GatewayDep, _: ApiKeyDep) -> Model:
    if model not in _available(pool, gateway):
        raise ModelNotFoundError(model)
    return Model(id=model)
