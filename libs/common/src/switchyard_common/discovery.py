"""Service discovery: where the instances of a service are, behind one interface.

Backends are small classes chosen by config. ``static`` ships now; Consul and Kubernetes
implement the same ABC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, Field


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


class Discovery(ABC):
    """Answers "which instances are there now?"; implementations may watch in the background."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Begin watching; called once from the owner's lifespan."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop watching and release resources."""

    @abstractmethod
    def instances(self) -> Sequence[Instance]:
        """The current view. Never blocks: watchers keep the last good view."""


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
