"""Active probes of one instance: is it healthy, which models it serves, how loaded it is.

Any OpenAI-compatible server can be an instance, so health is asked of what the server has,
in this order: ``/readyz`` (a Switchyard model-worker), ``/health`` (vLLM, llama.cpp's
``llama-server``, TGI), ``/v1/models`` (anything OpenAI-compatible: Ollama,
``llama_cpp.server``). The first path that answers (with anything but 404 or 405) is
remembered for the instance and detected again once it stops answering. ``/load`` (queue
depth, from a model-worker) is optional: asked while the instance answers it. The models
come from ``/v1/models``; when it gives no list, from what discovery knows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

MODELS_PATH = "/v1/models"
HEALTH_PATHS = ("/readyz", "/health", MODELS_PATH)
LOAD_PATH = "/load"
_ABSENT = frozenset({404, 405})


class ProbeFailedError(Exception):
    """The instance answered none of the health paths, or stopped answering its own."""


@dataclass
class ProbePlan:
    """What one instance answers, as detected."""

    health_path: str | None = None  # None: not detected yet
    has_load: bool = True


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    models: frozenset[str] | None  # None: no model list from the instance
    queued: int | None = None  # from /load, when the instance has it
    max_queue: int | None = None


async def _nothing() -> None:
    return None


class Prober:
    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    async def probe(self, url: str, plan: ProbePlan) -> ProbeResult:
        """Probe ``url``; raises ``ProbeFailedError``, ``httpx.HTTPError`` or a parse error
        (``KeyError``, ``TypeError``, ``ValueError``) when the instance did not answer."""
        try:
            return await self._probe(url, plan)
        except Exception:
            plan.health_path = None  # detect again: it may be another server by now
            raise

    async def _probe(self, url: str, plan: ProbePlan) -> ProbeResult:
        if plan.health_path is None:
            plan.health_path = await self._detect(url)
            plan.has_load = True
        path = plan.health_path
        health, models, load = await asyncio.gather(
            self._get(url, path),
            self._get(url, MODELS_PATH) if path != MODELS_PATH else _nothing(),
            self._optional(url, LOAD_PATH) if plan.has_load else _nothing(),
        )
        if health.status_code in _ABSENT:
            raise ProbeFailedError(f"{url}{path} answered {health.status_code}")
        models = models or health
        ids = None
        if models.status_code == 200:
            ids = frozenset(m["id"] for m in models.json()["data"])
        queued = max_queue = None
        if load is not None and load.status_code in _ABSENT:
            plan.has_load = False
        elif load is not None and load.status_code == 200:
            data: Any = load.json()
            queued, max_queue = int(data.get("queued", 0)), int(data.get("max_queue", 0))
        return ProbeResult(health.status_code == 200, ids, queued, max_queue)

    async def _detect(self, url: str) -> str:
        for path in HEALTH_PATHS:
            response = await self._get(url, path)
            if response.status_code not in _ABSENT:
                return path
        raise ProbeFailedError(f"{url} answers none of {', '.join(HEALTH_PATHS)}")

    async def _get(self, url: str, path: str) -> httpx.Response:
        return await self.client.get(f"{url}{path}", timeout=self.timeout)

    async def _optional(self, url: str, path: str) -> httpx.Response | None:
        try:
            return await self._get(url, path)
        except httpx.HTTPError:
            return None
