"""The gateway's relay to the webhook service: a tenant's ``/v1/webhook_endpoints`` calls are
passed on as they are, with the caller's tenant and the internal token, and the webhook
service's answer comes back as it said it.

Only known path shapes are relayed (ids and action names, no dot segments or encoded
slashes), so no public path can reach the webhook service's internal routes.
"""

from __future__ import annotations

import logging
import re

import httpx
from starlette.responses import Response

from switchyard_common.errors import InvalidRequestError, ServiceUnavailableError
from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_common.internal_calls import TENANT_HEADER

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# The webhook service's public API: endpoints and their sub-resources, and event types.
PUBLIC_ROOTS = ("/v1/webhook_endpoints", "/v1/webhook_event_types")


class WebhookServiceUnavailableError(ServiceUnavailableError):
    default_code = "webhook_service_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Webhook endpoints cannot be managed right now; retry shortly.",
            headers={"retry-after": "1"},
        )


def checked_path(path: str) -> str:
    """``path`` if it is one of the public webhook routes' shapes, else a 400."""
    root = next((r for r in PUBLIC_ROOTS if path == r or path.startswith(r + "/")), None)
    rest = path[len(root) :].strip("/") if root else ""
    if root is None or (rest and not all(_SEGMENT.match(s) for s in rest.split("/"))):
        raise InvalidRequestError("Invalid webhook endpoint path.", code="invalid_path")
    return path


class WebhookRelay:
    """HTTP calls to the webhook service at ``base_url``; the gateway's lifespan owns it."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.http = create_http_client(
            HttpClientConfig(connect_timeout=2.0, read_timeout=timeout), base_url=base_url
        )
        self._auth = {"authorization": f"Bearer {token}"} if token else {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def relay(self, method: str, path: str, query: str, tenant: str, body: bytes) -> Response:
        headers = {TENANT_HEADER: tenant, **self._auth}
        if body:
            headers["content-type"] = "application/json"
        url = checked_path(path) + (f"?{query}" if query else "")
        try:
            answer = await self.http.request(method, url, content=body or None, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("webhook service unreachable: %r", exc)
            raise WebhookServiceUnavailableError() from exc
        if answer.status_code in (502, 503, 504) and not answer.headers.get(
            "content-type", ""
        ).startswith("application/json"):
            raise WebhookServiceUnavailableError()  # a proxy's answer, not the service's
        return Response(
            answer.content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type", "application/json"),
        )
