"""Service discovery: where the instances of a service are, behind one interface.

Backends are small classes chosen by config: ``static`` (here), ``consul``
(``consul_discovery``) and ``kubernetes`` (``kubernetes_discovery``). Watching backends share
``WatchingDiscovery``: they keep the last good view when their source is unreachable, and
say so in logs and metrics.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

# Tag a worker puts on its registration for each model it serves: ``model=<name>``.
MODEL_TAG_PREFIX = "model="


@dataclass(frozen=True)
class Instance:
    """One reachable instance of a service."""

    id: str
    url: str
    models: frozenset[str] = frozenset()
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


class StaticInstanceConfig(BaseModel):
    """One entry of a static registry in settings."""

    url: str
    id: str | None = None
    models: list[str] = Field(default_factory=list)


class ConsulWatchSettings(BaseModel):
    """How the gateway watches Consul for worker instances."""

    model_config = ConfigDict(frozen=True)

    # Longest a blocking query is held open (Consul's ``wait``).
    wait_seconds: float = Field(default=30.0, gt=0, le=600)
    # Only instances with this tag (e.g. ``model=<name>``); empty: all passing instances.
    tag: str | None = None
    # Reconnect backoff while the agent is unreachable.
    retry_initial_seconds: float = Field(default=0.2, gt=0)
    retry_max_seconds: float = Field(default=5.0, gt=0)
    # How long ``start()`` waits for the first answer before serving with an empty view.
    initial_wait_seconds: float = Field(default=2.0, ge=0)


class KubernetesDiscoverySettings(BaseModel):
    """How the gateway watches EndpointSlices for worker instances (see docs/discovery.md)."""

    model_config = ConfigDict(frozen=True)

    # Namespace of the worker Service; empty: this pod's namespace (in cluster) or "default".
    namespace: str | None = None
    # Name of the EndpointSlice port to use; empty or absent: the first port.
    port_name: str | None = "http"
    scheme: str = "http"
    # Models every instance serves, known before probing (probes add the rest).
    models: list[str] = Field(default_factory=list)
    # API access: in-cluster service account by default; or a kubeconfig file; or a URL.
    kubeconfig: Path | None = None
    api_server: str | None = None
    watch_timeout_seconds: int = Field(default=60, ge=1)
    retry_initial_seconds: float = Field(default=0.2, gt=0)
    retry_max_seconds: float = Field(default=5.0, gt=0)
    initial_wait_seconds: float = Field(default=2.0, ge=0)


Listener = Callable[[], None]


class Discovery(ABC):
    """Answers "which instances are there now?"; implementations may watch in the background."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Begin watching; called once from the owner's lifespan."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop watching and release resources."""

    @abstractmethod
    def instances(self) -> Sequence[Instance]:
        """The current view. Never blocks: watchers keep the last good view."""

    def instances_serving(self, model: str) -> list[Instance]:
        """Instances known (from their registration) to serve ``model``."""
        return [i for i in self.instances() if model in i.models]

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` (in the event loop) whenever the view changes."""
        self.__dict__.setdefault("_listeners", []).append(listener)

    def _notify(self) -> None:
        for listener in self.__dict__.get("_listeners", ()):
            try:
                listener()
            except Exception:
                log.exception("discovery listener failed")


class StaticDiscovery(Discovery):
    """Instances listed in config: the embedded default used by ``switchyard up``."""

    def __init__(self, entries: Sequence[StaticInstanceConfig]) -> None:
        self._instances = tuple(
            Instance(
                id=e.id or e.url.rstrip("/"),
                url=e.url.rstrip("/"),
                models=frozenset(e.models),
            )
            for e in entries
        )

    def instances(self) -> Sequence[Instance]:
        return self._instances


class DiscoveryMetrics:
    """Whether the source answers, how stale the view is, and how big it is."""

    def __init__(self, registry: CollectorRegistry, backend: str) -> None:
        self.up = Gauge(
            f"switchyard_discovery_{backend}_up",
            f"1 when the last call to {backend} succeeded, 0 while it is unreachable.",
            registry=registry,
        )
        self.staleness = Gauge(
            "switchyard_discovery_staleness_seconds",
            "Seconds since the source last answered, while it is unreachable (0 when up).",
            ["backend"],
            registry=registry,
        ).labels(backend)
        self.instances = Gauge(
            "switchyard_discovery_instances",
            "Instances in the current view.",
            ["backend"],
            registry=registry,
        ).labels(backend)
        self.errors = Counter(
            "switchyard_discovery_errors",
            "Failed calls to the discovery source.",
            ["backend"],
            registry=registry,
        ).labels(backend)
        self.updates = Counter(
            "switchyard_discovery_updates",
            "Times the view changed.",
            ["backend"],
            registry=registry,
        ).labels(backend)


class WatchingDiscovery(Discovery):
    """A view fed by a watcher: keeps the last good view while the source is unreachable."""

    backend: ClassVar[str] = "watch"

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._view: tuple[Instance, ...] = ()
        self._up = False
        self._started = time.monotonic()
        self._last_ok: float | None = None
        self._reported_down = False
        self.metrics = DiscoveryMetrics(registry or CollectorRegistry(), self.backend)
        self.metrics.staleness.set_function(self.staleness_seconds)

    def instances(self) -> Sequence[Instance]:
        return self._view

    @property
    def up(self) -> bool:
        return self._up

    def staleness_seconds(self) -> float:
        if self._up:
            return 0.0
        return time.monotonic() - (self._last_ok or self._started)

    def _mark_up(self) -> None:
        self._last_ok = time.monotonic()
        if not self._up:
            log.info("%s discovery connected", self.backend, extra={"instances": len(self._view)})
        self._up = True
        self._reported_down = False
        self.metrics.up.set(1)

    def _mark_down(self, exc: BaseException) -> None:
        self.metrics.errors.inc()
        if self._up or not self._reported_down:
            log.warning(
                "%s unreachable; keeping the last known %d instances: %s",
                self.backend,
                len(self._view),
                exc,
                extra={"instances": len(self._view)},
            )
        self._up = False
        self._reported_down = True
        self.metrics.up.set(0)

    def _publish(self, instances: Sequence[Instance]) -> None:
        view = tuple(sorted(instances, key=lambda i: i.id))
        if view == self._view and all(
            a.meta == b.meta for a, b in zip(view, self._view, strict=True)
        ):
            return
        added = {i.id for i in view} - {i.id for i in self._view}
        removed = {i.id for i in self._view} - {i.id for i in view}
        self._view = view
        self.metrics.instances.set(len(view))
        self.metrics.updates.inc()
        log.info(
            "%s discovery view changed",
            self.backend,
            extra={"instances": len(view), "added": sorted(added), "removed": sorted(removed)},
        )
        self._notify()
