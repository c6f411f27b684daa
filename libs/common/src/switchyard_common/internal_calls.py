"""The contract of calls between services: the tenant the gateway vouches for, and the
internal token a service may require of its callers. Both are FastAPI dependencies, so the
session and webhook services check them the same way and answer the same errors."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import SecretStr

from switchyard_common.errors import AuthenticationError

# Set by the gateway on every call it makes for an API key: that key's tenant.
TENANT_HEADER = "x-switchyard-tenant"


async def vouched_tenant(
    x_switchyard_tenant: Annotated[str | None, Header(max_length=255)] = None,
) -> str:
    """The tenant the gateway vouches for (``TENANT_HEADER``); every row a call reads or
    writes belongs to it. A call for no tenant is not authenticated: 401."""
    if not x_switchyard_tenant:
        raise AuthenticationError(f"Missing tenant ({TENANT_HEADER}).", code="missing_tenant")
    return x_switchyard_tenant


TenantDep = Annotated[str, Depends(vouched_tenant)]


async def require_internal_token(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    """With the service's ``internal_token`` setting set, every call must carry it as a
    Bearer token (compared in constant time); unset, calls are taken as they come."""
    token: SecretStr | None = request.app.state.settings.internal_token
    if token is None:
        return
    expected = f"Bearer {token.get_secret_value()}".encode()
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
        raise AuthenticationError("Missing or invalid internal token.")
