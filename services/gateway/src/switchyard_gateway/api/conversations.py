"""``/v1/conversations``: the Conversations API, served by the session service for the
caller's tenant (another tenant's ids answer 404 there)."""

from __future__ import annotations

from fastapi import APIRouter

from switchyard_gateway.api.stateful import relay

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

# (method, path, name) of each route, as ``client.conversations`` calls them.
ROUTES = [
    ("POST", "", "create_conversation"),
    ("GET", "/{conversation_id}", "retrieve_conversation"),
    ("POST", "/{conversation_id}", "update_conversation"),
    ("DELETE", "/{conversation_id}", "delete_conversation"),
    ("POST", "/{conversation_id}/items", "create_items"),
    ("GET", "/{conversation_id}/items", "list_items"),
    ("GET", "/{conversation_id}/items/{item_id}", "retrieve_item"),
    ("DELETE", "/{conversation_id}/items/{item_id}", "delete_item"),
]
for method, path, name in ROUTES:
    router.add_api_route(path, relay, methods=[method], name=name)
