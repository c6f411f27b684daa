"""Registration in Consul: register on startup (retrying in the background), leave on stop.

``create_service_app`` runs ``consul_registration`` around every service's lifespan; it does
nothing unless ``consul.address`` is set. A service adds tags and meta before it is
registered through ``advertisement(app)`` (the model-worker: its models, backend and capacity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge

from switchyard_common.consul import (
    ConsulClient,
    ConsulUnavailableError,
    backoff_delays,
    go_duration,
)
from switchyard_common.lifecycle import PreStopHook
from switchyard_common.settings import ServiceSettings

log = logging.getLogger(__name__)

# Tag a worker puts on its registration for each model it serves (the gateway's Consul
# discovery reads it): ``model=<name>``.
MODEL_TAG_PREFIX = "model="

_ANY_HOST = ("", "0.0.0.0", "::")


@dataclass
class Advertisement:
    """What a service adds to its registration: extra tags and meta."""

    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)


def advertisement(app: FastAPI) -> Advertisement:
    """The app's extra registration tags and meta (created on first use)."""
    ad: Advertisement | None = getattr(app.state, "advertisement", None)
    if ad is None:
        ad = app.state.advertisement = Advertisement()
    return ad


def advertise_address(settings: ServiceSettings) -> str:
    if settings.registration.advertise_address:
        return settings.registration.advertise_address
    if settings.host not in _ANY_HOST:
        return settings.host
    return socket.gethostbyname(socket.gethostname())


def service_definition(settings: ServiceSettings, ad: Advertisement) -> dict[str, Any]:
    """The body of ``PUT /v1/agent/service/register`` for this instance."""
    reg = settings.registration
    address = advertise_address(settings)
    port = reg.advertise_port or settings.port
    host = f"[{address}]" if ":" in address else address
    tags = list(dict.fromkeys([*reg.tags, *ad.tags]))
    meta = {"version": settings.version, **reg.meta, **ad.meta}
    return {
        "name": reg.service_name or settings.service_name,
        "id": settings.instance_id,
        "address": address,
        "port": port,
        "tags": tags,
        "meta": meta,
        "check": {
            "Name": "readyz",
            "HTTP": f"http://{host}:{port}/readyz",
            "Interval": go_duration(reg.check_interval_seconds),
            "Timeout": go_duration(reg.check_timeout_seconds),
            "DeregisterCriticalServiceAfter": go_duration(reg.deregister_critical_after_seconds),
        },
    }


class RegistrationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registered = Gauge(
            "switchyard_consul_registered",
            "1 while this instance is registered in Consul.",
            registry=registry,
        )
        self.errors = Counter(
            "switchyard_consul_registration_errors",
            "Failed registration, resync or deregistration calls.",
            registry=registry,
        )


class Registrar:
    """Registers until Consul answers, re-registers if the agent forgets us, leaves once."""

    def __init__(
        self,
        client: ConsulClient,
        definition: dict[str, Any],
        settings: ServiceSettings,
        metrics: RegistrationMetrics,
    ) -> None:
        self.client = client
        self.definition = definition
        self.settings = settings.registration
        self.metrics = metrics
        self.registered = False
        self.left = False
        self._task: asyncio.Task[None] | None = None

    @property
    def service_id(self) -> str:
        return str(self.definition["id"])

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consul-registration")

    async def _run(self) -> None:
        reg = self.settings
        delays = backoff_delays(reg.retry_initial_seconds, reg.retry_max_seconds)
        while True:
            try:
                if not self.registered or not await self._still_registered():
                    if self.registered:
                        log.warning("consul agent lost our registration; registering again")
                    await self.client.register(self.definition)
                    self._set_registered(True)
                    log.info(
                        "registered in consul",
                        extra={"service_id": self.service_id, "service": self.definition["name"]},
                    )
            except ConsulUnavailableError as exc:
                self.metrics.errors.inc()
                delay = next(delays)
                log.warning("consul registration failed; retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                continue
            delays = backoff_delays(reg.retry_initial_seconds, reg.retry_max_seconds)
            await asyncio.sleep(reg.resync_seconds)

    async def _still_registered(self) -> bool:
        return self.service_id in await self.client.local_service_ids()

    def _set_registered(self, value: bool) -> None:
        self.registered = value
        self.metrics.registered.set(1 if value else 0)

    async def leave(self) -> bool:
        """Stop registering and deregister; True when this call deregistered us."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.left:
            return False
        self.left = True
        was_registered = self.registered
        try:
            await self.client.deregister(self.service_id)
        except ConsulUnavailableError as exc:
            self.metrics.errors.inc()
            log.warning("consul deregistration failed (the critical check will remove us): %s", exc)
            return False
        self._set_registered(False)
        log.info("deregistered from consul", extra={"service_id": self.service_id})
        return was_registered


@asynccontextmanager
async def consul_registration(app: FastAPI) -> AsyncIterator[None]:
    """Register in Consul in the background for the app's lifetime (no-op without Consul)."""
    settings: ServiceSettings = app.state.settings
    if not settings.consul.address or not settings.registration.enabled:
        yield
        return
    client = ConsulClient(settings.consul)
    definition = service_definition(settings, advertisement(app))
    registrar = Registrar(client, definition, settings, RegistrationMetrics(app.state.registry))
    app.state.registrar = registrar

    async def leave_before_stop() -> None:
        if await registrar.leave():
            # Keep serving while watchers (gateways) see the deregistration.
            await asyncio.sleep(settings.registration.leave_delay_seconds)

    pre_stop: list[PreStopHook] = app.state.pre_stop
    pre_stop.append(leave_before_stop)
    registrar.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await registrar.leave()
        await client.close()
