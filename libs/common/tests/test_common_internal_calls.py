"""The contract of calls between services: the internal token and the vouched tenant, checked
the same way (and answered with the same OpenAI errors) by every service that uses them."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from switchyard_common.app import create_service_app
from switchyard_common.internal_calls import TENANT_HEADER, TenantDep, require_internal_token
from switchyard_common.settings import ServiceSettings


class InternalSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_INTERNALTEST_")
    service_name: str = "internal-test"
    internal_token: SecretStr | None = None


def client(token: str | None) -> TestClient:
    router = APIRouter(dependencies=[Depends(require_internal_token)])

    @router.get("/v1/mine")
    async def mine(tenant: TenantDep) -> dict[str, str]:
        return {"tenant": tenant}

    settings = InternalSettings(internal_token=token)
    return TestClient(create_service_app(settings, routers=[router], configure_logs=False))


def test_the_vouched_tenant_is_the_one_used() -> None:
    with client(None) as http:
        assert http.get("/v1/mine", headers={TENANT_HEADER: "acme"}).json() == {"tenant": "acme"}


@pytest.mark.parametrize("headers", [{}, {TENANT_HEADER: ""}])
def test_a_call_for_no_tenant_is_401(headers: dict[str, str]) -> None:
    with client(None) as http:
        r = http.get("/v1/mine", headers=headers)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_tenant"
    assert TENANT_HEADER in r.json()["error"]["message"]


def test_an_overlong_tenant_is_refused() -> None:
    with client(None) as http:
        r = http.get("/v1/mine", headers={TENANT_HEADER: "t" * 256})
    assert r.status_code == 400 and r.json()["error"]["param"] == TENANT_HEADER


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Bearer wrong", 401), ("secret", 401), ("Bearer secret", 200)],
)
def test_the_internal_token_when_set(authorization: str | None, status: int) -> None:
    headers = {TENANT_HEADER: "acme"}
    if authorization is not None:
        headers["authorization"] = authorization
    with client("secret") as http:
        r = http.get("/v1/mine", headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.json()["error"]["message"] == "Missing or invalid internal token."
