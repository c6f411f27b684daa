"""``/v1/conversations``: create, retrieve, update metadata, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from switchyard_common.errors import json_response
from switchyard_common.internal_calls import TenantDep
from switchyard_session.api.deps import StoreDep, WriteDep
from switchyard_session.items import check_metadata, message_items

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

MAX_INITIAL_ITEMS = 20


class ConversationCreate(BaseModel):
    items: list[Any] | None = Field(default=None, max_length=MAX_INITIAL_ITEMS)
    metadata: dict[str, str] | None = None
    # A Switchyard extension (``extra_body``): this conversation's own retention.
    ttl_seconds: float | None = Field(default=None, gt=0)


class ConversationUpdate(BaseModel):
    metadata: dict[str, str]


@router.post("")
async def create_conversation(body: ConversationCreate, write: WriteDep) -> Response:
    return json_response(
        await write.store.create_conversation(
            write.tenant,
            message_items(body.items or []),
            check_metadata(body.metadata),
            ttl_seconds=body.ttl_seconds,
            idempotency_key=write.key,
        )
    )


@router.get("/{conversation_id}")
async def retrieve_conversation(
    conversation_id: str, store: StoreDep, tenant: TenantDep
) -> Response:
    return json_response(await store.get_conversation(tenant, conversation_id))


@router.post("/{conversation_id}")
async def update_conversation(
    conversation_id: str, body: ConversationUpdate, write: WriteDep
) -> Response:
    metadata = check_metadata(body.metadata)
    return json_response(
        await write.store.update_conversation(
            write.tenant, conversation_id, metadata, idempotency_key=write.key
        )
    )


@router.delete("/{conversation_id}")
async def delete_conversation(conversation_id: str, store: StoreDep, tenant: TenantDep) -> Response:
    return json_response(await store.delete_conversation(tenant, conversation_id))
