"""The gateway's client of the session service: conversations, stored turns, turn context.

Every call carries the caller's tenant (``x-switchyard-tenant``) and, when configured, the
internal service token. The session service down or unreachable is a 503 with
``Retry-After``: only stateful requests need it, stateless ones never call it.

A turn's own calls (its context, token counts, the finished turn) are POSTs of JSON on the
gateway's lean HTTP client (``upstream.py``), like the worker calls: a stored turn's p50
fell by about 1 ms (of 4.5 added) when its call left httpx. The other calls (the relayed
routes, the background runner) go through httpx.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from switchyard_common.errors import ServiceUnavailableError, SwitchyardError, error_body
from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_common.internal_calls import TENANT_HEADER
from switchyard_common.telemetry import trace_headers
from switchyard_gateway.upstream import UpstreamClient, UpstreamIOError, encode_headers

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
        self.lean = UpstreamClient(connect_timeout=2.0, read_timeout=timeout)
        self.base_url = base_url
        self._prefix = urlsplit(base_url).path.rstrip("/")
        self._auth = {"authorization": f"Bearer {token}"} if token else {}

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.lean.close()

    def _headers(self, tenant: str, idempotency_key: str | None) -> dict[str, str]:
        headers = {TENANT_HEADER: tenant, **self._auth}
        if idempotency_key is not None:
            headers["idempotency-key"] = idempotency_key
        return headers

    @staticmethod
    def _answer(status: int, content: bytes) -> dict[str, Any]:
        """The JSON answer, or the session service's error raised as it said it."""
        if status in (502, 503, 504):
            raise SessionUnavailableError()
        try:
            body: dict[str, Any] = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise SessionUnavailableError() from exc
        if status >= 400:
            raise RelayedError(status, body)
        return body

    async def post(
        self, path: str, tenant: str, body: Any, *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """A POST of JSON on the lean client (a turn's calls); as ``call`` answers."""
        headers = self._headers(tenant, idempotency_key)
        headers["content-type"] = "application/json"
        headers.update(trace_headers())
        target = f"{self._prefix}{path}".encode()
        try:
            answer = await self.lean.post(
                self.base_url, target, encode_headers(headers), orjson.dumps(body)
            )
            try:
                content = await answer.read()
            finally:
                answer.release()  # back to the pool when read in full, else dropped
        except UpstreamIOError as exc:
            log.warning("session service unreachable: %r", exc)
            raise SessionUnavailableError() from exc
        return self._answer(answer.status, content)

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
        headers = self._headers(tenant, idempotency_key)
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
        return self._answer(response.status_code, response.content)

    async def context(
        self,
        tenant: str,
        model: str,
        *,
        conversation: str | None,
        previous_response_id: str | None,
        budget: int | None,
    ) -> dict[str, Any]:
        return await self.post(
            "/v1/context",
            tenant,
            {"model": model, "conversation": conversation,
             "previous_response_id": previous_response_id, "budget": budget},
        )  # fmt: skip

    async def write_token_counts(self, tenant: str, model: str, counts: dict[int, int]) -> None:
        if counts:
            await self.post(
                "/v1/token_counts",
                tenant,
                {"model": model, "counts": [{"ref": r, "tokens": n} for r, n in counts.items()]},
            )

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
        return await self.post(
            "/v1/responses",
            tenant,
            {"response": response, "input_items": input_items, "store": store,
             "tokens": tokens},
            idempotency_key=idempotency_key,
        )  # fmt: skip
