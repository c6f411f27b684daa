"""The proxy routes served ahead of the framework, inside the request context.

A proxy route that forwards its body as bytes gains nothing from routing, dependency
solving and the exception middleware layers, and pays for them on every request: POST
requests to these paths go straight to their endpoint (``Request`` in, ``Response`` out).
Errors still become OpenAI error JSON; everything else goes on to FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard_common.errors import response_for
from switchyard_common.metrics import HttpMetrics
from switchyard_common.middleware import RequestContext

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class _RouteLabel:
    """Stands in for a router's route in the scope, so metrics see the route template."""

    path: str


class FastRouteContext(RequestContext):
    """The request context, serving ``routes`` (POST path -> endpoint) itself."""

    def __init__(
        self,
        metrics: HttpMetrics,
        service: str,
        *,
        recording: bool,
        routes: Mapping[str, Endpoint],
    ) -> None:
        super().__init__(metrics, service, recording=recording)
        self.routes = dict(routes)
        self.labels = {path: _RouteLabel(path) for path in self.routes}

    async def dispatch(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, header: tuple[bytes, bytes]
    ) -> int:
        path = scope["path"]
        endpoint = self.routes.get(path) if scope["method"] == "POST" else None
        if endpoint is None:
            return await super().dispatch(scope, receive, send, app, header)
        scope["route"] = self.labels[path]
        try:
            response = await endpoint(Request(scope, receive, send))
        except Exception as exc:
            response = response_for(exc)
        response.raw_headers.append(header)
        await response(scope, receive, send)
        return response.status_code
