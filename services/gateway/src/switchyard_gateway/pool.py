"""The live view of model-worker instances: discovery plus active probes.

Discovery says which instances exist; probes say which are healthy, which models each
serves and how loaded it is. Routing only sees instances that are healthy, whose breaker
allows traffic, and that are below their in-flight bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from switchyard_gateway.breakers import InstanceBreaker
from switchyard_gateway.discovery.base import Discovery, Instance
from switchyard_gateway.probes import ProbeFailedError, ProbePlan, Prober
from switchyard_gateway.slots import Slots

log = logging.getLogger(__name__)

BreakerFactory = Callable[[str], InstanceBreaker]
UNHEALTHY_AFTER = 2


@dataclass
class InstanceState:
    instance: Instance
    breaker: InstanceBreaker
    healthy: bool = False
    models: frozenset[str] = frozenset()
    slots: Slots = field(default_factory=Slots)  # this gateway's requests to it right now
    reported_queued: int = 0
    max_queue: int = 0
    probe_failures: int = 0  # consecutive failed probes
    plan: ProbePlan = field(default_factory=ProbePlan)  # what the instance answers
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def in_flight(self) -> int:
        return self.slots.in_use

    @property
    def load(self) -> int:
        """Our in-flight requests plus the queue the instance last reported.

        The queue is what other gateway replicas add; the instance's own in-flight count is
        not used, because a polled count cannot tell our finished requests from theirs.
        """
        return self.in_flight + self.reported_queued

    def saturated(self, per_instance_limit: int) -> bool:
        if self.in_flight >= per_instance_limit:
            return True
        return self.max_queue > 0 and self.reported_queued >= self.max_queue


# Told when an instance turns healthy (reason None) or unhealthy (reason "probe_failed":
# unreachable or a bad answer twice in a row, or "not_ready": it says it is not ready).
HealthListener = Callable[[InstanceState, str | None], None]


def _refresh_views(breakers: list[InstanceBreaker]) -> None:
    for breaker in breakers:
        try:
            breaker.refresh_view()
        except Exception as exc:  # Redis down: keep the last view
            log.warning("could not read shared breaker state: %r", exc)


class InstancePool:
    def __init__(
        self,
        discovery: Discovery,
        client: httpx.AsyncClient,
        breaker_factory: BreakerFactory,
        *,
        probe_interval: float,
        probe_timeout: float,
        per_instance_limit: int,
        on_removed: Callable[[str], None] | None = None,
        on_health_change: HealthListener | None = None,
    ) -> None:
        self.discovery = discovery
        self.prober = Prober(client, probe_timeout)
        self.breaker_factory = breaker_factory
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.per_instance_limit = per_instance_limit
        self.on_removed = on_removed
        self.on_health_change = on_health_change
        # The first refresh only learns the state things are in: changes are told after it.
        self._baseline_taken = False
        self._states: dict[str, InstanceState] = {}
        self._task: asyncio.Task[None] | None = None
        self._refresh_lock = asyncio.Lock()
        self._last_refresh = 0.0
        self._known_models: frozenset[str] = frozenset()

    async def start(self) -> None:
        await self.discovery.start()
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="instance-probe")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.discovery.stop()

    def serving(self, model: str) -> list[InstanceState]:
        """Healthy instances serving ``model`` whose breaker lets traffic through."""
        return [
            s
            for s in self._states.values()
            if s.healthy and model in s.models and s.breaker.allows()
        ]

    def knows(self, model: str) -> bool:
        """Whether any instance (healthy or not) serves ``model``, as of the last refresh."""
        return model in self._known_models

    def members(self, model: str) -> list[InstanceState]:
        """Every instance known to serve ``model``, healthy or not."""
        return [s for s in self._states.values() if model in s.models]

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
                if self.on_removed is not None:
                    self.on_removed(gone)
            for iid, inst in current.items():
                state = self._states.get(iid)
                if state is None:
                    self._states[iid] = InstanceState(
                        inst, self.breaker_factory(iid), models=inst.models
                    )
                elif state.instance != inst:
                    state.instance = inst
            await asyncio.gather(*(self._probe(s) for s in list(self._states.values())))
            shared = [s.breaker for s in self._states.values() if s.breaker.shared]
            if shared:  # breaker state shared through Redis: read it off the event loop
                await asyncio.to_thread(_refresh_views, shared)
            self._known_models = frozenset(m for s in self._states.values() for m in s.models)
            self._last_refresh = time.monotonic()
            self._baseline_taken = True

    def _set_health(self, state: InstanceState, healthy: bool, reason: str | None) -> None:
        if healthy == state.healthy:
            return
        state.healthy = healthy
        if self._baseline_taken and self.on_health_change is not None:
            try:
                self.on_health_change(state, reason)
            except Exception:  # a listener's failure must not stop the probes
                log.exception("health listener failed")

    async def _probe(self, state: InstanceState) -> None:
        url = state.instance.url
        try:
            result = await self.prober.probe(url, state.plan)
        except (ProbeFailedError, httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            state.probe_failures += 1
            # One slow answer from a busy instance is not an outage: two in a row are.
            if state.healthy and state.probe_failures >= UNHEALTHY_AFTER:
                log.warning("instance unhealthy", extra={"instance": url, "reason": repr(exc)})
                self._set_health(state, False, "probe_failed")
            return
        state.probe_failures = 0
        if result.models is not None:
            state.models = result.models | state.instance.models
        if result.queued is not None and result.max_queue is not None:
            state.reported_queued, state.max_queue = result.queued, result.max_queue
        if result.healthy != state.healthy:
            log.info(
                "instance healthy" if result.healthy else "instance not ready",
                extra={"instance": url, "probe": state.plan.health_path},
            )
        self._set_health(state, result.healthy, None if result.healthy else "not_ready")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("instance refresh failed")
