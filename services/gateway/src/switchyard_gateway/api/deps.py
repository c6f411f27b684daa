"""Dependencies handing lifespan-owned objects to handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.handling import Gateway
from switchyard_gateway.keys import ApiKey, KeyStore
from switchyard_gateway.pool import InstancePool


async def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_pool(request: Request) -> InstancePool:
    pool: InstancePool = request.app.state.pool
    return pool


async def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


def gateway_of(request: Request) -> Gateway:
    """The request pipeline, for the fast routes (which take no dependencies)."""
    gateway: Gateway = request.app.state.gateway
    return gateway


async def require_api_key(
    keys: Annotated[KeyStore, Depends(get_keys)],
    authorization: Annotated[str | None, Header()] = None,
) -> ApiKey:
    return await keys.authenticate(authorization)


async def require_admin_key(key: Annotated[ApiKey, Depends(require_api_key)]) -> ApiKey:
    KeyStore.require_admin(key)
    return key


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
PoolDep = Annotated[InstancePool, Depends(get_pool)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
ApiKeyDep = Annotated[ApiKey, Depends(require_api_key)]
AdminKeyDep = Annotated[ApiKey, Depends(require_admin_key)]
