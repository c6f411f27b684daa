"""Test helpers: a real local HTTP receiver, and a webhook app served by uvicorn in the test's
event loop so the ``openai`` SDK can talk to it over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import uvicorn
from aiohttp import web
from fastapi import FastAPI

from switchyard_webhook.config import WebhookSettings
from switchyard_webhook.dispatcher import Dispatcher
from switchyard_webhook.main import create_app


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Records every POST; ``status`` decides each answer (a code, or a callable)."""

    url: str = ""
    status: int | Callable[[Received], int] = 200
    # While set to an unset event, requests are recorded as received and then held.
    hold: asyncio.Event | None = None
    received: list[Received] = field(default_factory=list)
    # Bodies answered 2xx, one entry per answer.
    accepted: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        item = Received({k.lower(): v for k, v in request.headers.items()}, await request.read())
        code = self.status(item) if callable(self.status) else self.status
        async with self._changed:
            self.received.append(item)
            self._changed.notify_all()
        if self.hold is not None:
            await self.hold.wait()
        async with self._changed:
            if 200 <= code < 300:
                self.accepted.append(item)
            self._changed.notify_all()
        return web.Response(status=code, text="ok")

    async def wait_for(self, predicate: Callable[[Receiver], bool], timeout: float = 20) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def wait_accepted(self, count: int, timeout: float = 20) -> list[Received]:
        await self.wait_for(lambda r: len(r.accepted) >= count, timeout)
        return self.accepted


@contextlib.asynccontextmanager
async def run_receiver(
    path: str = "/hook", port: int = 0, receiver: Receiver | None = None
) -> AsyncIterator[Receiver]:
    """Serve ``receiver`` (a new one by default) on 127.0.0.1:``port`` (0: a free one)."""
    receiver = receiver or Receiver()
    app = web.Application()
    app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def fast_settings(data_dir: Path, **values: Any) -> WebhookSettings:
    """Settings for tests: quick retries and polling, embedded SQLite unless a URL is given."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "retry_schedule_seconds": [0.05, 0.1, 0.2],
        "retry_jitter": 0.0,
        "dispatcher_poll_seconds": 0.05,
        "endpoint_timeout_seconds": 5.0,
        "shutdown_grace_seconds": 1.0,
        "log_json": False,
    }
    return WebhookSettings(**(base | values))


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:``port`` (0: a free one) in this event loop; yields its
    base URL."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the webhook app did not start")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        root.handlers[:], root.level = saved


@dataclass
class Service:
    """A webhook service under test: in this process (``app``) or another one."""

    url: str
    app: FastAPI | None = None
    tenant: str = "acme"

    @property
    def dispatcher(self) -> Dispatcher:
        assert self.app is not None
        dispatcher: Dispatcher = self.app.state.dispatcher
        return dispatcher

    def client(self, tenant: str | None = None, token: str = "unused") -> openai.AsyncOpenAI:
        """The SDK as ``tenant`` would call the service (the gateway sets the header), with
        the internal ``token`` as its bearer token."""
        return openai.AsyncOpenAI(
            base_url=f"{self.url}/v1",
            api_key=token,
            default_headers={"x-switchyard-tenant": tenant or self.tenant},
        )

    async def publish(self, event_type: str, data: dict[str, Any], tenant: str | None = None,
                      **extra: Any) -> dict[str, Any]:  # fmt: skip
        body = {"type": event_type, "data": data, "tenant": tenant or self.tenant, **extra}
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(f"{self.url}/internal/v1/events", json=body)
        assert r.status_code == 202, r.text
        result: dict[str, Any] = r.json()
        return result

    async def get(self, path: str, tenant: str | None = None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.get(
                f"{self.url}{path}", headers={"x-switchyard-tenant": tenant or self.tenant}
            )

    async def post(self, path: str, body: Any = None, tenant: str | None = None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(
                f"{self.url}{path}",
                json=body,
                headers={"x-switchyard-tenant": tenant or self.tenant},
            )

    async def deliveries(self, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        r = await self.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries?{query}")
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data


@contextlib.asynccontextmanager
async def webhook_service(
    settings: WebhookSettings, port: int = 0, **kwargs: Any
) -> AsyncIterator[Service]:
    app = create_app(settings, **kwargs)
    async with serve_app(app, port) as url:
        yield Service(url, app)
