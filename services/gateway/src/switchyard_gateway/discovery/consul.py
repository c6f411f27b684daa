"""Discovery from Consul: a blocking-query watch over the passing-only health endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry

from switchyard_common.consul import ConsulClient, ConsulUnavailableError, HealthEntry
from switchyard_common.consul import backoff_delays as _backoff
from switchyard_common.registration import MODEL_TAG_PREFIX
from switchyard_common.settings import ConsulSettings
from switchyard_gateway.discovery.base import Instance, WatchingDiscovery
from switchyard_gateway.discovery.settings import ConsulWatchSettings

log = logging.getLogger(__name__)

# Pause between two answers, so idempotent writes in Consul cannot spin the watch loop.
_MIN_LOOP_SECONDS = 0.02


def models_of(tags: tuple[str, ...], meta: dict[str, str]) -> frozenset[str]:
    """Models from ``model=<name>`` tags and the comma-separated ``models`` meta key."""
    found = {t[len(MODEL_TAG_PREFIX) :] for t in tags if t.startswith(MODEL_TAG_PREFIX)}
    found.update(m.strip() for m in meta.get("models", "").split(","))
    found.discard("")
    return frozenset(found)


def to_instances(entries: list[HealthEntry]) -> list[Instance]:
    instances: dict[str, Instance] = {}
    for e in entries:
        if not e.address or not e.port:
            log.warning("consul entry without address or port", extra={"instance": e.service_id})
            continue
        host = f"[{e.address}]" if ":" in e.address else e.address
        scheme = e.meta.get("scheme", "http")
        # Service ids are unique per agent; qualify by node when two agents reuse one.
        iid = e.service_id if e.service_id not in instances else f"{e.node}/{e.service_id}"
        instances[iid] = Instance(
            id=iid,
            url=f"{scheme}://{host}:{e.port}",
            models=models_of(e.tags, e.meta),
            meta=dict(e.meta),
        )
    return list(instances.values())


class ConsulDiscovery(WatchingDiscovery):
    """Watches ``/v1/health/service/<service>?passing=1`` with ``index`` and ``wait``."""

    backend = "consul"

    def __init__(
        self,
        consul: ConsulSettings,
        service: str,
        watch: ConsulWatchSettings | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(registry)
        self.consul_settings = consul
        self.service = service
        self.watch = watch or ConsulWatchSettings()
        self._client: ConsulClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._answered = asyncio.Event()

    async def start(self) -> None:
        self._client = ConsulClient(self.consul_settings)
        self._task = asyncio.create_task(self._run(self._client), name="consul-discovery")
        # Start with a view when Consul answers quickly; never fail startup when it does not.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._answered.wait(), self.watch.initial_wait_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    async def _run(self, client: ConsulClient) -> None:
        index = 0
        delays = _backoff(self.watch.retry_initial_seconds, self.watch.retry_max_seconds)
        while True:
            try:
                new_index, entries = await client.healthy(
                    self.service, index=index, wait=self.watch.wait_seconds, tag=self.watch.tag
                )
            except ConsulUnavailableError as exc:
                self._mark_down(exc)
                self._answered.set()
                index = 0  # the agent may have restarted with a fresh index
                await asyncio.sleep(next(delays))
                continue
            except Exception as exc:  # never let the watch die; keep the last view
                log.exception("consul watch failed")
                self._mark_down(exc)
                index = 0
                await asyncio.sleep(next(delays))
                continue
            delays = _backoff(self.watch.retry_initial_seconds, self.watch.retry_max_seconds)
            self._mark_up()
            self._publish(to_instances(entries))
            self._answered.set()
            # Consul's rules: an index that goes backwards resets the watch; one below 1
            # would make the next query return at once.
            index = 1 if new_index < 1 else (0 if new_index < index else new_index)
            await asyncio.sleep(_MIN_LOOP_SECONDS)
