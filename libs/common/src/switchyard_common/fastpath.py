"""Hot routes served straight from ASGI, ahead of the framework's routing.

A proxy route that reads its body as bytes and forwards it gains nothing from routing,
dependency solving and exception middleware layers, and pays for them on every request.
Routes given here still run inside the request-context middleware (request ids, spans,
metrics), and their typed errors still become OpenAI error JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard_common.errors import SwitchyardError

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class _RouteLabel:
    """Stands in for a router's route in the scope, so metrics see the route template."""

    path: str


class FastPathMiddleware:
    def __init__(self, app: ASGIApp, routes: Mapping[str, Endpoint]) -> None:
        self.app = app
        self.routes = dict(routes)
        self.labels = {path: _RouteLabel(path) for path in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.routes.get(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.labels[scope["path"]]
        try:
            response = await endpoint(Request(scope, receive, send))
        except SwitchyardError as exc:
            response = exc.to_response()
        await response(scope, receive, send)
