"""Routing policies: small strategies behind one ABC, chosen by config."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence

from switchyard_gateway.pool import InstanceState


class RoutingPolicy(ABC):
    @abstractmethod
    def order(self, candidates: Sequence[InstanceState], key: str | None) -> list[InstanceState]:
        """Candidates in the order to try them: the first is the pick, the rest are retries."""


class RoundRobin(RoutingPolicy):
    def __init__(self) -> None:
        self._counter = itertools.count()

    def order(self, candidates: Sequence[InstanceState], key: str | None) -> list[InstanceState]:
        if not candidates:
            return []
        start = next(self._counter) % len(candidates)
        return [*candidates[start:], *candidates[:start]]


def make_policy(name: str) -> RoutingPolicy:
    policies: dict[str, type[RoutingPolicy]] = {"round-robin": RoundRobin}
    return policies[name]()
