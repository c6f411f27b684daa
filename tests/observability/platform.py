"""The platform under observation: ``switchyard up`` with every service's scrape target
labelled the way the chart's ServiceMonitors label it, and traffic that touches every
dashboard panel (successes, a stream, an error, a rate-limit hit, embeddings, a
conversation, webhook deliveries with a dead letter)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

from tests.support.fixtures import MODEL, Platform, start_platform
from tests.support.procs import free_port

EMBEDDINGS_MODEL = "all-minilm-l6-v2"
NAMESPACE = "switchyard"
# Environment the services inherit through ``switchyard up``: quick webhook retries, so a
# failing receiver is dead-lettered within the test.
WEBHOOK_TOKEN = "observability-test-token"
SERVICE_ENV = {
    "SWITCHYARD_WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0.05]",
    "SWITCHYARD_WEBHOOK_DISPATCHER_POLL_SECONDS": "0.05",
    # The embedded session database is created at start (``switchyard up`` may not ask yet).
    "SWITCHYARD_SESSION_AUTO_MIGRATE": "true",
    # The webhook service's internal token, so the traffic below can call it directly.
    "SWITCHYARD_WEBHOOK_INTERNAL_TOKEN": WEBHOOK_TOKEN,
}


@dataclass(frozen=True)
class Target:
    """One scrape target: its URL and the target labels Prometheus gives its series."""

    job: str
    url: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ObservedPlatform:
    platform: Platform
    targets: list[Target]

    def target(self, job: str) -> Target:
        return next(t for t in self.targets if t.job == job)


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_observed(tmp: Path) -> ObservedPlatform:
    embeddings_port = free_port()
    with _env(SERVICE_ENV):
        platform = start_platform(tmp, extra=("--embeddings-port", str(embeddings_port)))
    urls = {
        "gateway": platform.gateway,
        "chat": platform.worker,
        "embed": f"http://127.0.0.1:{embeddings_port}",
        "session": platform.session,
        "webhook": platform.webhook,
    }
    return ObservedPlatform(platform, scrape_targets(urls))


def scrape_targets(urls: dict[str, str]) -> list[Target]:
    """What the ServiceMonitors give every series: namespace, job (the Service), pod; the
    model-worker's also model and pool (relabelled from the pod's switchyard.io/ labels)."""
    base = {"namespace": NAMESPACE}
    return [
        Target("gateway", urls["gateway"], {**base, "pod": "switchyard-gateway-0"}),
        Target("model-worker", urls["chat"],
               {**base, "pod": "switchyard-model-worker-chat-0", "model": MODEL, "pool": "chat"}),
        Target("model-worker", urls["embed"],
               {**base, "pod": "switchyard-model-worker-embed-0", "model": EMBEDDINGS_MODEL,
                "pool": "embed"}),
        Target("session", urls["session"], {**base, "pod": "switchyard-session-0"}),
        Target("webhook", urls["webhook"], {**base, "pod": "switchyard-webhook-0"}),
    ]  # fmt: skip


def scrape(url: str) -> str:
    r = httpx.get(f"{url}/metrics", timeout=10)
    r.raise_for_status()
    return r.text


class Traffic:
    """Requests that give every panel something to show. Each round moves every counter, so
    after two rounds (with a scrape between) every rate has an increase to show."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        admin = {"Authorization": f"Bearer {platform.api_key}"}
        # A tenant key with one request per minute: its second request is rate limited.
        r = httpx.post(f"{platform.gateway}/admin/v1/keys", headers=admin,
                       json={"name": "obs", "tenant": "acme", "rpm": 1})  # fmt: skip
        r.raise_for_status()
        self.limited_key = r.json()["key"]
        self.receiver = WebhookReceiver()
        self.conversation = ""

    def round(self) -> None:
        p = self.platform
        messages: Any = [{"role": "user", "content": "Say hi."}]
        with openai.OpenAI(base_url=p.base_url, api_key=p.api_key, max_retries=0) as c:
            c.chat.completions.create(model=MODEL, messages=messages, max_tokens=8)
            stream = c.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=8, stream=True
            )
            assert sum(1 for _ in stream) > 1
            c.embeddings.create(model=EMBEDDINGS_MODEL, input=["a", "b"])
            for _ in range(2):  # a cache miss, then a hit
                c.chat.completions.create(
                    model=MODEL, messages=messages, max_tokens=4, temperature=0,
                    extra_headers={"x-switchyard-cache": "on"},
                )  # fmt: skip
            with pytest.raises(openai.NotFoundError):
                c.chat.completions.create(model="no-such-model", messages=messages)
        with openai.OpenAI(base_url=p.base_url, api_key=self.limited_key, max_retries=0) as t:
            with contextlib.suppress(openai.RateLimitError):  # the first round's one request
                t.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)
            with pytest.raises(openai.RateLimitError):
                t.chat.completions.create(model=MODEL, messages=messages, max_tokens=4)
        self.conversation_turn()
        asyncio.run(self.receiver.deliveries(p.webhook))

    def conversation_turn(self) -> None:
        """A turn on the session service, as the gateway calls it for a tenant."""
        headers = {"x-switchyard-tenant": "acme", "authorization": f"Bearer {WEBHOOK_TOKEN}"}
        item = {"type": "message", "role": "user", "content": "Hello"}
        with httpx.Client(base_url=self.platform.session, headers=headers, timeout=10) as http:
            if not self.conversation:
                r = http.post("/v1/conversations", json={"items": [item]})
                r.raise_for_status()
                self.conversation = r.json()["id"]
            http.post(f"/v1/conversations/{self.conversation}/items",
                      json={"items": [item]}).raise_for_status()  # fmt: skip
            http.post("/v1/context", json={"model": MODEL, "conversation": self.conversation,
                                           "budget": 1000}).raise_for_status()  # fmt: skip


class WebhookReceiver:
    """Two endpoints on loopback: one accepts, one always fails (dead letters)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoints = False

    async def deliveries(self, webhook_url: str) -> None:
        got: asyncio.Queue[int] = asyncio.Queue()

        async def handle(request: web.Request) -> web.Response:
            status = 200 if request.path == "/ok" else 500
            got.put_nowait(status)
            return web.Response(status=status)

        app = web.Application()
        app.router.add_post("/{name}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        headers = {"x-switchyard-tenant": "acme", "authorization": f"Bearer {WEBHOOK_TOKEN}"}
        try:
            async with httpx.AsyncClient(base_url=webhook_url, headers=headers, timeout=10) as c:
                for name in () if self.endpoints else ("ok", "fail"):
                    r = await c.post("/v1/webhook_endpoints", json={
                        "name": name, "url": f"http://127.0.0.1:{self.port}/{name}",
                        "event_types": ["batch.completed"]})  # fmt: skip
                    r.raise_for_status()
                self.endpoints = True
                r = await c.post("/internal/v1/events", json={
                    "type": "batch.completed", "data": {"id": "b1"}, "tenant": "acme"})  # fmt: skip
                assert r.status_code == 202, r.text
                seen: list[int] = []
                # A success, and the failing endpoint's first try and its one retry.
                while sorted(seen) != [200, 500, 500]:
                    seen.append(await asyncio.wait_for(got.get(), timeout=30))
        finally:
            await runner.cleanup()
