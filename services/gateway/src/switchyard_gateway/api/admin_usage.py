"""/admin/v1/usage: requests and tokens per tenant since this replica started (admin keys)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from switchyard_gateway.api.deps import AdminKeyDep
from switchyard_gateway.usage import TenantUsage

router = APIRouter(prefix="/admin/v1/usage", tags=["admin"])


@router.get("")
async def usage(
    request: Request, _: AdminKeyDep, tenant: str | None = Query(default=None, max_length=200)
) -> dict[str, Any]:
    tenants: TenantUsage = request.app.state.usage
    return {"object": "list", "data": tenants.report(tenant)}
