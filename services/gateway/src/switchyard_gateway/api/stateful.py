"""What the stateful routes (conversations, responses) share: the caller's key, checked and
counted against its rate limit like every API call; the session service client; and the
relay of a request to the session service for the caller's tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.responses import Response

from switchyard_common.errors import RequestTooLargeError, json_response
from switchyard_gateway.api.deps import ApiKeyDep, gateway_of
from switchyard_gateway.keys import ApiKey
from switchyard_gateway.session_client import SessionClient, SessionUnavailableError


async def get_sessions(request: Request) -> SessionClient:
    sessions: SessionClient | None = getattr(request.app.state, "sessions", None)
    if sessions is None:  # no session service configured
        raise SessionUnavailableError()
    return sessions


async def admitted_key(request: Request, key: ApiKeyDep) -> ApiKey:
    """The caller's key, admitted by its rate limit (429 over it; a down store lets it by)."""
    await gateway_of(request).admit(key)
    return key


SessionsDep = Annotated[SessionClient, Depends(get_sessions)]
AdmittedKeyDep = Annotated[ApiKey, Depends(admitted_key)]
IdempotencyKeyHeader = Annotated[str | None, Header(alias="idempotency-key", max_length=255)]


async def relay(
    request: Request, key: AdmittedKeyDep, sessions: SessionsDep, idem: IdempotencyKeyHeader = None
) -> Response:
    """The endpoint of every stateful route that the session service serves as is: the same
    method, path (still percent-encoded: an id stays one segment), query and JSON body, for
    the caller's tenant; the answer passed back."""
    content = None
    if request.method == "POST":
        content = await request.body()
        if len(content) > gateway_of(request).max_body_bytes:
            raise RequestTooLargeError("The request body is too large.")
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    answer = await sessions.call(
        request.method, path.split("?", 1)[0], key.tenant, content=content,
        params=request.query_params, idempotency_key=idem,
    )  # fmt: skip
    return json_response(answer)
