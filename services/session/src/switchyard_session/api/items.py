"""``/v1/conversations/{id}/items``: append, list (cursor pages), retrieve, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from switchyard_common.errors import json_response
from switchyard_common.internal_calls import TenantDep
from switchyard_session.api.deps import PageDep, StoreDep, WriteDep
from switchyard_session.items import message_items

router = APIRouter(prefix="/v1/conversations/{conversation_id}/items", tags=["items"])

# At most this many items in one append (OpenAI allows 20 per request).
MAX_ITEMS_PER_APPEND = 20


class ItemsCreate(BaseModel):
    items: list[Any] = Field(min_length=1, max_length=MAX_ITEMS_PER_APPEND)


@router.post("")
async def create_items(conversation_id: str, body: ItemsCreate, write: WriteDep) -> Response:
    items = message_items(body.items)
    return json_response(
        await write.store.append_items(
            write.tenant, conversation_id, items, idempotency_key=write.key
        )
    )


@router.get("")
async def list_items(
    conversation_id: str, page: PageDep, store: StoreDep, tenant: TenantDep
) -> Response:
    return json_response(
        await store.list_items(
            tenant, conversation_id, after=page.after, limit=page.limit, order=page.order
        )
    )


@router.get("/{item_id}")
async def retrieve_item(
    conversation_id: str, item_id: str, store: StoreDep, tenant: TenantDep
) -> Response:
    return json_response(await store.get_item(tenant, conversation_id, item_id))


@router.delete("/{item_id}")
async def delete_item(
    conversation_id: str, item_id: str, store: StoreDep, tenant: TenantDep
) -> Response:
    return json_response(await store.delete_item(tenant, conversation_id, item_id))
