"""Dependencies handing lifespan-owned objects to handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from switchyard_gateway.auth import KeyStore
from switchyard_gateway.pool import InstancePool
from switchyard_gateway.proxy import Forwarder


def get_forwarder(request: Request) -> Forwarder:
    forwarder: Forwarder = request.app.state.forwarder
    return forwarder


def get_pool(request: Request) -> InstancePool:
    pool: InstancePool = request.app.state.pool
    return pool


def require_api_key(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    keys: KeyStore = request.app.state.keys
    return keys.authenticate(authorization)


ForwarderDep = Annotated[Forwarder, Depends(get_forwarder)]
PoolDep = Annotated[InstancePool, Depends(get_pool)]
ApiKeyDep = Depends(require_api_key)
