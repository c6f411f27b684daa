"""/v1/webhook_endpoints: the ``openai`` SDK's ``client.webhooks`` methods, per tenant."""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from switchyard_common.errors import UpstreamError
from switchyard_common.internal_calls import TenantDep, require_internal_token
from switchyard_webhook import endpoints
from switchyard_webhook.api.deps import (
    DbDep,
    DispatcherDep,
    NowDep,
    PolicyDep,
    SenderDep,
    SettingsDep,
)
from switchyard_webhook.api.pages import list_page
from switchyard_webhook.event_types import EVENT_TYPES, check_event_type, check_event_types
from switchyard_webhook.outbox import event_payload
from switchyard_webhook.signing import signed_headers
from switchyard_webhook.ssrf import TargetRefusedError

router = APIRouter(tags=["webhook endpoints"], dependencies=[Depends(require_internal_token)])
PREFIX = "/v1/webhook_endpoints"

Name = Field(min_length=1, max_length=255)
Url = Field(min_length=1, max_length=2048)


class CreateEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Name
    url: str = Url
    event_types: list[str]


class UpdateEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=255)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = None
    # Switchyard extension: enable or disable the endpoint.
    status: Literal["enabled", "disabled"] | None = None


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep_old_secret_active_for_24_hours: bool = False


class TestEndpoint(BaseModel):
    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid")
    event_type: str


@router.post(PREFIX)
async def create_endpoint(
    body: CreateEndpoint, tenant: TenantDep, db: DbDep, policy: PolicyDep, now: NowDep
) -> dict[str, Any]:
    event_types = check_event_types(body.event_types)
    await policy.check(body.url)
    async with db.write() as conn:
        row = await endpoints.create(conn, tenant, body.name, body.url, event_types, now)
    return endpoints.endpoint_json(row, with_secret=True)


@router.get(PREFIX)
async def list_endpoints(
    tenant: TenantDep,
    db: DbDep,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=100),
) -> dict[str, Any]:
    async with db.read() as conn:
        rows, has_more = await endpoints.page(conn, tenant, after, limit)
    return list_page([endpoints.endpoint_json(r) for r in rows], has_more)


@router.get(PREFIX + "/{endpoint_id}")
async def retrieve_endpoint(endpoint_id: str, tenant: TenantDep, db: DbDep) -> dict[str, Any]:
    async with db.read() as conn:
        return endpoints.endpoint_json(await endpoints.get(conn, tenant, endpoint_id))


@router.post(PREFIX + "/{endpoint_id}")
async def update_endpoint(
    endpoint_id: str,
    body: UpdateEndpoint,
    tenant: TenantDep,
    db: DbDep,
    policy: PolicyDep,
    dispatcher: DispatcherDep,
    now: NowDep,
) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True)
    if body.event_types is not None:
        values["event_types"] = check_event_types(body.event_types)
    if body.url is not None:
        await policy.check(body.url)
    async with db.write() as conn:
        row = await endpoints.change(conn, tenant, endpoint_id, values, now)
    if dispatcher is not None and body.status == "enabled":
        dispatcher.wake()  # its deliveries left pending while it was disabled
    return endpoints.endpoint_json(row)


@router.delete(PREFIX + "/{endpoint_id}")
async def delete_endpoint(endpoint_id: str, tenant: TenantDep, db: DbDep) -> dict[str, Any]:
    async with db.write() as conn:
        await endpoints.remove(conn, tenant, endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True}


@router.post(PREFIX + "/{endpoint_id}/rotate_secret")
async def rotate_secret(
    endpoint_id: str,
    tenant: TenantDep,
    db: DbDep,
    settings: SettingsDep,
    now: NowDep,
    body: RotateSecret | None = None,
) -> dict[str, Any]:
    keep = body is not None and body.keep_old_secret_active_for_24_hours
    grace = settings.rotation_grace_seconds if keep else None
    async with db.write() as conn:
        row = await endpoints.rotate_secret(conn, tenant, endpoint_id, grace, now)
    return endpoints.endpoint_json(row, with_secret=True)


@router.post(PREFIX + "/{endpoint_id}/test")
async def test_endpoint(
    endpoint_id: str,
    body: TestEndpoint,
    tenant: TenantDep,
    db: DbDep,
    sender: SenderDep,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    """Send one sample event of the type to the endpoint now, and say what it answered."""
    event_type = check_event_type(body.event_type)
    async with db.read() as conn:
        row = await endpoints.get(conn, tenant, endpoint_id)
    event_id = "evt_test_" + secrets.token_hex(8)
    sample = {"id": f"{event_type.split('.')[0]}_test_{secrets.token_hex(4)}"}
    payload = event_payload(event_id, event_type, sample, int(now)).encode()
    headers = signed_headers(endpoints.signing_secrets(row, now), event_id, int(now), payload)
    attempt = await sender.send(row["url"], headers, payload, settings.endpoint_timeout_seconds)
    if attempt.refused:
        raise TargetRefusedError((attempt.error or "refused").removeprefix("refused: "))
    if attempt.status_code is None:
        raise UpstreamError(f"The webhook endpoint could not be reached: {attempt.error}")
    return {
        "object": "webhook_endpoint.test",
        "webhook_endpoint_id": endpoint_id,
        "event_type": event_type,
        "status_code": attempt.status_code,
        "success": True,
    }


@router.get("/v1/webhook_event_types")
async def list_event_types(_: TenantDep) -> dict[str, Any]:
    return {"object": "list", "data": list(EVENT_TYPES)}
