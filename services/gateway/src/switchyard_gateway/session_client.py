"""The gateway's client of the session service: conversations, stored turns, turn context.

Every call carries the caller's tenant (``x-switchyard-tenant``) and, when configured, the
internal service token. The session service down or unreachable is a 503 with
``Retry-After``: only stateful requests need it, stateless ones never call it.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson

from switchyard_common.errors import ServiceUnavailableError, SwitchyardError, error_body
from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_common.internal_calls import TENANT_HEADER

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1


class SessionUnavailableError(ServiceUnavailableError):
    default_code = "session_service_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Conversation state is unavailable right now; retry shortly. (Requests with "
            "store=false and no previous_response_id or conversation do not need it.)",
            headers={"retry-after": str(RETRY_AFTER_SECONDS)},
        )


class RelayedError(SwitchyardError):
    """An error another service answered (404, 400, ...), passed on as it said it."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        error = body.get("error") or {}
        super().__init__(
            str(error.get("message", "Session service error.")),
            param=error.get("param"),
            code=error.get("code"),
        )
        self.status_code = status_code  # type: ignore[misc]
        self.error_type = str(error.get("type", "invalid_request_error"))  # type: ignore[misc]

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.param, self.code)


class SessionClient:
    """HTTP calls to the session service at ``base_url``; the gateway's lifespan owns it."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.http = create_http_client(
            HttpClientConfig(connect_timeout=2.0, read_timeout=timeout), base_url=base_url
        )
        self._auth = {"authorization": f"Bearer {token}"} if token else {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        tenant: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Any = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """One call (a ``json`` body, or ``content`` already JSON); its JSON answer, or the
        session service's error raised as it said it."""
        headers = {TENANT_HEADER: tenant, **self._auth}
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        if json is not None:
            content = orjson.dumps(json)
        if content is not None:
            headers["content-type"] = "application/json"
        try:
            response = await self.http.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("session service unreachable: %r", exc)
            raise SessionUnavailableError() from exc
        if response.status_code in (502, 503, 504):
            raise SessionUnavailableError()
        try:
            body: dict[str, Any] = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise SessionUnavailableError() from exc
        if response.status_code >= 400:
            raise RelayedError(response.status_code, body)
        return body

    async def context(
        self,
        tenant: str,
        model: str,
        *,
        conversation: str | None,
        previous_response_id: str | None,
        budget: int | None,
    ) -> dict[str, Any]:
        return await self.call(
            "POST",
            "/v1/context",
            tenant,
            json={"model": model, "conversation": conversation,
                  "previous_response_id": previous_response_id, "budget": budget},
        )  # fmt: skip

    async def write_token_counts(self, tenant: str, model: str, counts: dict[int, int]) -> None:
        if counts:
            await self.call(
                "POST",
                "/v1/token_counts",
                tenant,
                json={"model": model, "counts": [{"ref": r, "tokens": n} for r, n in
                                                 counts.items()]},
            )  # fmt: skip

    async def record_turn(
        self,
        tenant: str,
        response: dict[str, Any],
        input_items: list[dict[str, Any]],
        *,
        store: bool,
        tokens: dict[str, dict[str, int]],
        idempotency_key: str | None,
    ) -> dict[str, Any]:
        """Record a finished turn; answers the stored response (with an ``Idempotency-Key``
        used before: the first one)."""
        return await self.call(
            "POST",
            "/v1/responses",
            tenant,
            json={"response": response, "input_items": input_items, "store": store,
                  "tokens": tokens},
            idempotency_key=idempotency_key,
        )  # fmt: skip
