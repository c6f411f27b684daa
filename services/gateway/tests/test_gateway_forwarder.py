"""The forwarder over raw upstream servers: what is retried, and what counts against a breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from switchyard_common.errors import UpstreamTimeoutError
from switchyard_gateway.breakers import InstanceBreaker
from switchyard_gateway.discovery.base import Instance
from switchyard_gateway.forwarding import Forwarder, InstancesBusyError
from switchyard_gateway.outcome import Outcome
from switchyard_gateway.policies import RoundRobin
from switchyard_gateway.pool import InstanceState
from switchyard_gateway.upstream import UpstreamClient

from .scripted_server import Reader, Server, Writer, answer, keep_alive

MODEL = "m"
BODY = b'{"model": "m", "messages": []}'
GOOD = b'{"id": "ok", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}'


class _Pool:
    """The part of ``InstancePool`` the forwarder uses, over fixed instance states."""

    def __init__(self, states: list[InstanceState]) -> None:
        self.states = states

    def serving(self, model: str) -> list[InstanceState]:
        return [s for s in self.states if model in s.models and s.breaker.allows()]

    def members(self, model: str) -> list[InstanceState]:
        return self.states

    def knows(self, model: str) -> bool:
        return model == MODEL

    async def refresh_if_stale(self) -> None:
        return None


def _state(url: str) -> InstanceState:
    breaker = InstanceBreaker(url, fail_max=1, reset_seconds=30)
    return InstanceState(
        Instance(id=url, url=url), breaker, healthy=True, models=frozenset({MODEL})
    )


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(connect_timeout=1, read_timeout=0.3)
    yield client
    await client.close()


def _forwarder(client: UpstreamClient, states: list[InstanceState]) -> Forwarder:
    return Forwarder(
        _Pool(states),  # type: ignore[arg-type]
        RoundRobin(per_instance_limit=10),
        client,
        total_timeout=5,
        max_attempts=3,
        backoff_base=0.001,
        backoff_max=0.01,
        retry_deadline=5,
        aliases={},
        fallbacks={},
    )


async def _forward(forwarder: Forwarder, outcome: Outcome) -> tuple[int, bytes]:
    response = await forwarder.forward(
        "/v1/chat/completions", BODY, {"model": MODEL, "messages": []}, model=MODEL, tenant="t",
        affinity=None, outcome=outcome, on_stream_end=lambda _: None,
    )  # fmt: skip
    return response.status_code, bytes(response.body)


async def _good(server: Server, reader: Reader, writer: Writer) -> None:
    while await server.request(reader) is not None:
        writer.write(answer(GOOD))


async def test_a_body_broken_before_reaching_the_client_is_retried_and_trips_the_breaker(
    client: UpstreamClient,
) -> None:
    async def breaks_mid_body(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(answer(GOOD)[:-10])  # the head and most of the body, then gone
        await writer.drain()
        writer.transport.abort()

    async with Server(breaks_mid_body) as bad, Server(_good) as good:
        states = [_state(bad.url), _state(good.url)]
        outcome = Outcome()
        status, body = await _forward(_forwarder(client, states), outcome)
        assert (status, body) == (200, GOOD)
        assert outcome.retries == ["upstream_error"]
        assert (outcome.prompt_tokens, outcome.completion_tokens) == (3, 2)
        assert states[0].breaker.state == "open"  # fail_max=1: the broken body counted
        assert states[0].in_flight == states[1].in_flight == 0
        assert len(bad.requests) == len(good.requests) == 1


async def test_a_stalled_body_is_a_timeout_not_a_retry(client: UpstreamClient) -> None:
    async def stalls(server: Server, reader: Reader, writer: Writer) -> None:
        await server.request(reader)
        writer.write(answer(GOOD)[:-10])
        await keep_alive(server, reader, writer)  # never sends the rest

    async with Server(stalls) as slow, Server(_good) as good:
        forwarder = _forwarder(client, [_state(slow.url), _state(good.url)])
        with pytest.raises(UpstreamTimeoutError):
            await _forward(forwarder, Outcome())
        assert good.requests == []  # the time was spent: not sent again elsewhere


async def test_instances_at_their_bound_are_skipped_and_all_full_is_a_fast_503(
    client: UpstreamClient,
) -> None:
    async with Server(_good) as one, Server(_good) as two:
        states = [_state(one.url), _state(two.url)]
        states[0].slots.in_use = 10  # at the bound (per_instance_limit=10)
        forwarder = _forwarder(client, states)
        for _ in range(3):
            assert (await _forward(forwarder, Outcome()))[0] == 200
        assert (len(one.requests), len(two.requests)) == (0, 3)
        states[1].slots.in_use = 10
        with pytest.raises(InstancesBusyError) as info:
            await _forward(forwarder, Outcome())
        assert info.value.status_code == 503
        assert info.value.headers["retry-after"] == "1"
        assert len(two.requests) == 3


async def test_each_model_of_a_fallback_chain_gets_its_own_attempts(
    client: UpstreamClient,
) -> None:
    async def fails(server: Server, reader: Reader, writer: Writer) -> None:
        while await server.request(reader) is not None:
            writer.write(answer(b"{}", status=500))

    async with Server(fails) as bad1, Server(fails) as bad2, Server(_good) as fallback:
        primary = [_state(bad1.url), _state(bad2.url)]
        backup = _state(fallback.url)
        backup.models = frozenset({"backup"})
        pool_states = [*primary, backup]
        forwarder = _forwarder(client, pool_states)
        forwarder.max_attempts = 2  # spent in full on the primary model's two instances
        forwarder.fallbacks = {MODEL: ["backup"]}
        outcome = Outcome()
        status, body = await _forward(forwarder, outcome)
        assert (status, body) == (200, GOOD)
        assert outcome.model == "backup"
        assert outcome.retries == ["upstream_error", "upstream_error"]  # two retries, not 3
        assert len(fallback.requests) == 1
        assert b'"model":"backup"' in fallback.requests[0][1]
