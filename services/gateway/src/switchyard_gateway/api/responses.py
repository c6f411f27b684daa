"""``/v1/responses``: create (a turn, streamed, or queued in the background) and cancel on
the gateway; retrieve, delete and input items from the session service."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from switchyard_common.errors import json_response
from switchyard_gateway.api.deps import gateway_of
from switchyard_gateway.api.stateful import (
    AdmittedKeyDep,
    IdempotencyKeyHeader,
    SessionsDep,
    relay,
)
from switchyard_gateway.responses.background import BackgroundRunner
from switchyard_gateway.responses.request import parse_turn
from switchyard_gateway.responses.turns import Turns
from switchyard_gateway.session_client import SessionUnavailableError

router = APIRouter(prefix="/v1/responses", tags=["responses"])


@router.post("")
async def create_response(
    request: Request,
    body: Annotated[dict[str, Any], Body()],
    key: AdmittedKeyDep,
    idem: IdempotencyKeyHeader = None,
) -> Response:
    turn = parse_turn(body)
    if turn.background:
        runner: BackgroundRunner | None = request.app.state.background
        if runner is None:
            raise SessionUnavailableError()
        return json_response(await runner.queue(turn, body, key))
    turns: Turns = request.app.state.turns
    # Held to the gateway's in-flight bound and counted as route "responses".
    return await gateway_of(request).serve(
        "responses", turn.model, lambda: turns.run(turn, key, idem)
    )


@router.post("/{response_id}/cancel")
async def cancel_response(
    request: Request, response_id: str, key: AdmittedKeyDep, sessions: SessionsDep
) -> Response:
    """Cancel a background response: the session service marks it, and the gateway running
    it stops its generation (this one at once, another at its next lease renewal)."""
    answer = await sessions.call(
        "POST", f"/internal/v1/responses/{quote(response_id, safe='')}/cancel", key.tenant
    )
    runner: BackgroundRunner | None = request.app.state.background
    if runner is not None and answer["cancelled"]:
        runner.cancel(response_id)
        runner.publish("response.cancelled", response_id, key.tenant)
    return json_response(answer["response"])


for method, path, name in [
    ("GET", "/{response_id}", "retrieve_response"),
    ("DELETE", "/{response_id}", "delete_response"),
    ("GET", "/{response_id}/input_items", "list_input_items"),
]:
    router.add_api_route(path, relay, methods=[method], name=name)
