"""``/v1/responses``: create (a turn, streamed or not) on the gateway; retrieve, delete and
input items from the session service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from switchyard_gateway.api.stateful import AdmittedKeyDep, IdempotencyKeyHeader, relay
from switchyard_gateway.responses.request import parse_turn
from switchyard_gateway.responses.turns import Turns

router = APIRouter(prefix="/v1/responses", tags=["responses"])


@router.post("")
async def create_response(
    request: Request,
    body: Annotated[dict[str, Any], Body()],
    key: AdmittedKeyDep,
    idem: IdempotencyKeyHeader = None,
) -> Response:
    turns: Turns = request.app.state.turns
    return await turns.run(parse_turn(body), key, idem)


for method, path, name in [
    ("GET", "/{response_id}", "retrieve_response"),
    ("DELETE", "/{response_id}", "delete_response"),
    ("GET", "/{response_id}/input_items", "list_input_items"),
]:
    router.add_api_route(path, relay, methods=[method], name=name)
