"""The live view of model-worker instances: discovery plus active health probes.

Discovery says which instances exist; probes say which are healthy and which models each
serves. Routing only ever sees healthy instances that serve the requested model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from switchyard_common.discovery import Discovery, Instance

log = logging.getLogger(__name__)


@dataclass
class InstanceState:
    instance: Instance
    healthy: bool = False
    models: frozenset[str] = frozenset()
    in_flight: int = 0


class InstancePool:
    def __init__(
        self,
        discovery: Discovery,
        client: httpx.AsyncClient,
        *,
        probe_interval: float,
        probe_timeout: float,
    ) -> None:
        self.discovery = discovery
        self.client = client
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self._states: dict[str, InstanceState] = {}
        self._task: asyncio.Task[None] | None = None
        self._refresh_lock = asyncio.Lock()
        self._last_refresh = 0.0

    async def start(self) -> None:
        await self.discovery.start()
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="instance-probe")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.discovery.stop()

    def states(self) -> Sequence[InstanceState]:
        return list(self._states.values())

    def candidates(self, model: str) -> list[InstanceState]:
        return [s for s in self._states.values() if s.healthy and model in s.models]

    def models(self) -> list[str]:
        return sorted({m for s in self._states.values() if s.healthy for m in s.models})

    async def refresh_if_stale(self, min_age: float = 0.5) -> None:
        """Refresh now unless a refresh finished within ``min_age`` seconds."""
        if time.monotonic() - self._last_refresh >= min_age:
            await self.refresh()

    async def refresh(self) -> None:
        async with self._refresh_lock:
            current = {i.id: i for i in self.discovery.instances()}
            for gone in self._states.keys() - current.keys():
                log.info("instance removed", extra={"instance": gone})
                del self._states[gone]
            for iid, inst in current.items():
                state = self._states.get(iid)
                if state is None or state.instance != inst:
                    self._states[iid] = InstanceState(inst, models=inst.models)
            await asyncio.gather(*(self._probe(s) for s in list(self._states.values())))
            self._last_refresh = time.monotonic()

    async def _probe(self, state: InstanceState) -> None:
        url = state.instance.url
        try:
            resp = await self.client.get(f"{url}/v1/models", timeout=self.probe_timeout)
            resp.raise_for_status()
            models = frozenset(m["id"] for m in resp.json()["data"])
            ready = await self.client.get(f"{url}/readyz", timeout=self.probe_timeout)
            healthy = ready.status_code == 200
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            if state.healthy:
                log.warning("instance unhealthy", extra={"instance": url, "reason": repr(exc)})
            state.healthy = False
            return
        state.models = models | state.instance.models
        if healthy != state.healthy:
            log.info(
                "instance healthy" if healthy else "instance not ready", extra={"instance": url}
            )
        state.healthy = healthy

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("instance refresh failed")
