"""Instances listed in settings (``STATIC_WORKERS``): the default of ``switchyard up``."""

from __future__ import annotations

from collections.abc import Sequence

from switchyard_gateway.discovery.base import Discovery, Instance
from switchyard_gateway.discovery.settings import StaticInstanceConfig


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
