"""/admin/v1/keys: create, list and revoke API keys (admin keys only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from switchyard_gateway.api.deps import AdminKeyDep, KeysDep

router = APIRouter(prefix="/admin/v1/keys", tags=["admin"])


class CreateKey(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    tenant: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    cache: bool = False
    admin: bool = False


@router.post("", status_code=201)
async def create_key(body: CreateKey, keys: KeysDep, _: AdminKeyDep) -> dict[str, Any]:
    key, token = await keys.create(**body.model_dump())
    # The only time the key itself is shown.
    return {**key.public(), "key": token}


@router.get("")
async def list_keys(keys: KeysDep, _: AdminKeyDep) -> dict[str, Any]:
    return {"object": "list", "data": [k.public() for k in await keys.list()]}


@router.delete("/{key_id}")
async def revoke_key(key_id: str, keys: KeysDep, _: AdminKeyDep) -> dict[str, Any]:
    return (await keys.revoke(key_id)).public()
