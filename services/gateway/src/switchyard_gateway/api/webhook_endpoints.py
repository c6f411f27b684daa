"""``/v1/webhook_endpoints`` and ``/v1/webhook_event_types``: the ``openai`` SDK's
``client.webhooks`` (and Switchyard's delivery extensions), served by the webhook service for
the caller's tenant. Every route needs an API key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from switchyard_common.errors import NotFoundError, RequestTooLargeError
from switchyard_gateway.api.deps import ApiKeyDep
from switchyard_gateway.webhook_relay import WebhookRelay

router = APIRouter(tags=["webhooks"])
MAX_BODY_BYTES = 1024 * 1024


async def _relay(request: Request, key: ApiKeyDep) -> Response:
    relay: WebhookRelay | None = getattr(request.app.state, "webhooks", None)
    if relay is None:
        raise NotFoundError("Webhooks are not enabled on this gateway (no webhook_url).")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise RequestTooLargeError("The request body is too large.")
    return await relay.relay(request.method, request.url.path, request.url.query, key.tenant, body)


router.add_api_route("/v1/webhook_endpoints", _relay, methods=["GET", "POST"])
router.add_api_route("/v1/webhook_endpoints/{rest:path}", _relay, methods=["GET", "POST", "DELETE"])
router.add_api_route("/v1/webhook_event_types", _relay, methods=["GET"])
