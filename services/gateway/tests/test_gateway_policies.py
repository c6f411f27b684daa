"""Routing policies as plain objects: least-loaded, session affinity."""

from __future__ import annotations

from collections import Counter

from switchyard_gateway.breakers import InstanceBreaker
from switchyard_gateway.discovery.base import Instance
from switchyard_gateway.policies import LeastLoaded, SessionAffinity
from switchyard_gateway.pool import InstanceState


def state(iid: str, in_flight: int = 0, **kw: int) -> InstanceState:
    breaker = InstanceBreaker(iid, fail_max=2, reset_seconds=0.2)
    s = InstanceState(Instance(id=iid, url=f"http://{iid}"), breaker, healthy=True, **kw)
    for _ in range(in_flight):
        s.slots.acquire()
    return s


def test_least_loaded_prefers_the_idle_instance_of_any_pair() -> None:
    busy, idle = state("busy", in_flight=5), state("idle")
    policy = LeastLoaded(100)
    assert all(policy.order([busy, idle], None)[0] is idle for _ in range(20))
    # With three, the busiest can never win a pair it is in.
    third = state("mid", in_flight=2)
    picks = Counter(policy.order([busy, idle, third], None)[0].instance.id for _ in range(300))
    assert picks["busy"] == 0
    assert picks["idle"] > picks["mid"] > 0


def test_least_loaded_counts_reported_queue() -> None:
    queued = state("q", reported_queued=4)
    free = state("f")
    assert LeastLoaded(100).order([queued, free], None)[0] is free


def test_session_affinity_is_sticky_and_spreads_sessions() -> None:
    members = [state(f"w{i}") for i in range(3)]
    policy = SessionAffinity(100)
    owners = {f"s{i}": policy.order(members, f"s{i}", members)[0].instance.id for i in range(60)}
    assert all(policy.order(members, s, members)[0].instance.id == o for s, o in owners.items())
    assert len(set(owners.values())) == 3


def test_session_affinity_moves_only_the_lost_instances_sessions() -> None:
    members = [state(f"w{i}") for i in range(3)]
    policy = SessionAffinity(100)
    before = {f"s{i}": policy.order(members, f"s{i}", members)[0] for i in range(60)}
    healthy = [m for m in members if m.instance.id != "w0"]
    for session, owner in before.items():
        pick = policy.order(healthy, session, members)[0]
        if owner.instance.id != "w0":
            assert pick is owner
        else:
            assert pick in healthy


def test_session_affinity_falls_back_when_owner_is_saturated() -> None:
    members = [state("a"), state("b")]
    policy = SessionAffinity(per_instance_limit=2)
    owner = policy.order(members, "sess", members)[0]
    owner.slots.acquire(), owner.slots.acquire()
    assert policy.order(members, "sess", members)[0] is not owner
