"""Dependencies: the store from the lifespan, the caller's tenant, the internal token."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import Depends, Header, Query, Request

from switchyard_common.errors import AuthenticationError
from switchyard_session.config import SessionSettings
from switchyard_session.store import Store


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def require_internal_token(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """With ``internal_token`` set, every API call must carry it as a Bearer token."""
    settings: SessionSettings = request.app.state.settings
    if settings.internal_token is None:
        return
    expected = f"Bearer {settings.internal_token.get_secret_value()}".encode()
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
        raise AuthenticationError("Missing or invalid service token.")


async def get_tenant(
    x_switchyard_tenant: Annotated[str | None, Header(max_length=255)] = None,
) -> str:
    """The tenant the gateway vouches for; every row read or written belongs to it."""
    if not x_switchyard_tenant:
        raise AuthenticationError("Missing tenant (x-switchyard-tenant).", code="missing_tenant")
    return x_switchyard_tenant


StoreDep = Annotated[Store, Depends(get_store)]
TenantDep = Annotated[str, Depends(get_tenant)]
IdempotencyKey = Annotated[str | None, Header(alias="idempotency-key", max_length=255)]
After = Annotated[str | None, Query()]
Limit = Annotated[int, Query(ge=1, le=100)]
Order = Annotated[Literal["asc", "desc"], Query()]
