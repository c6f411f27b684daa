"""The discovery interface: where the model-worker instances are.

Backends are small classes chosen by settings: ``static``, ``consul`` and ``kubernetes``
(modules of this package). Watching backends share ``WatchingDiscovery``: they keep the
last good view when their source is unreachable, and say so in logs and metrics.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Instance:
    """One reachable instance of a service."""

    id: str
    url: str
    models: frozenset[str] = frozenset()
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


class Discovery(ABC):
    """Answers "which instances are there now?"; implementations may watch in the background."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Begin watching; called once from the owner's lifespan."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop watching and release resources."""

    @abstractmethod
    def instances(self) -> Sequence[Instance]:
        """The current view. Never blocks: watchers keep the last good view."""


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
