"""Routing policies: small strategies behind one ABC, chosen by config."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence

from switchyard_gateway.pool import InstanceState


class RoutingPolicy(ABC):
    def __init__(self, per_instance_limit: int) -> None:
        self.per_instance_limit = per_instance_limit

    @abstractmethod
    def order(
        self,
        candidates: Sequence[InstanceState],
        key: str | None,
        members: Sequence[InstanceState] = (),
    ) -> list[InstanceState]:
        """Candidates in the order to try them: the first is the pick, the rest are retries.

        ``candidates`` can take traffic now; ``members`` are all instances of the model,
        healthy or not (session affinity hashes over them so health changes move only the
        sessions of the instance that changed).
        """


class RoundRobin(RoutingPolicy):
    def __init__(self, per_instance_limit: int) -> None:
        super().__init__(per_instance_limit)
        self._counter = itertools.count()

    def order(
        self,
        candidates: Sequence[InstanceState],
        key: str | None,
        members: Sequence[InstanceState] = (),
    ) -> list[InstanceState]:
        if not candidates:
            return []
        start = next(self._counter) % len(candidates)
        return [*candidates[start:], *candidates[:start]]


class LeastLoaded(RoutingPolicy):
    """Power of two choices on load (our in-flight plus what the instance reports)."""

    def order(
        self,
        candidates: Sequence[InstanceState],
        key: str | None,
        members: Sequence[InstanceState] = (),
    ) -> list[InstanceState]:
        if len(candidates) <= 1:
            return list(candidates)
        if len(candidates) == 2:
            return sorted(candidates, key=_load_then_random)
        a, b = random.sample(list(candidates), 2)
        first = min(a, b, key=_load_then_random)
        rest = sorted((s for s in candidates if s is not first), key=_load_then_random)
        return [first, *rest]


def _load_then_random(state: InstanceState) -> tuple[int, float]:
    """Lowest load first; ties broken at random so equal instances share the work."""
    return state.load, random.random()


class SessionAffinity(RoutingPolicy):
    """Consistent hashing on the session id (or ``user``), so a conversation returns to the
    instance holding its prefix cache; least-loaded when the target is down or saturated."""

    VNODES = 64

    def __init__(self, per_instance_limit: int) -> None:
        super().__init__(per_instance_limit)
        self._fallback = LeastLoaded(per_instance_limit)
        self._rings: dict[frozenset[str], tuple[list[int], list[str]]] = {}

    @staticmethod
    def _hash(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    def _ring(self, ids: frozenset[str]) -> tuple[list[int], list[str]]:
        ring = self._rings.get(ids)
        if ring is None:
            points = sorted(
                (self._hash(f"{iid}#{v}"), iid) for iid in ids for v in range(self.VNODES)
            )
            ring = ([p for p, _ in points], [i for _, i in points])
            if len(self._rings) > 64:
                self._rings.clear()
            self._rings[ids] = ring
        return ring

    def owner(self, members: Sequence[InstanceState], key: str) -> InstanceState:
        by_id = {s.instance.id: s for s in members}
        hashes, ids = self._ring(frozenset(by_id))
        index = bisect.bisect(hashes, self._hash(key)) % len(hashes)
        return by_id[ids[index]]

    def order(
        self,
        candidates: Sequence[InstanceState],
        key: str | None,
        members: Sequence[InstanceState] = (),
    ) -> list[InstanceState]:
        if not candidates:
            return []
        rest = self._fallback.order(candidates, None)
        if key is None:
            return rest
        target = self.owner(members or candidates, key)
        if target not in candidates or target.saturated(self.per_instance_limit):
            return rest  # the owner is down, open or full: least-loaded instead
        return [target, *(s for s in rest if s is not target)]


POLICIES: dict[str, type[RoutingPolicy]] = {
    "least-loaded": LeastLoaded,
    "session-affinity": SessionAffinity,
    "round-robin": RoundRobin,
}


def make_policy(name: str, per_instance_limit: int) -> RoutingPolicy:
    return POLICIES[name](per_instance_limit)
