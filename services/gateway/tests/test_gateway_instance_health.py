"""The pool tells a listener when an instance turns ready or unhealthy (what the
``switchyard.worker.*`` platform events are made from): changes only, after the first look."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from switchyard_gateway.breakers import InstanceBreaker
from switchyard_gateway.discovery.settings import StaticInstanceConfig
from switchyard_gateway.discovery.static import StaticDiscovery
from switchyard_gateway.pool import HealthListener, InstancePool, InstanceState

MODELS = {"object": "list", "data": [{"id": "served", "object": "model"}]}


class Instance(httpx.AsyncBaseTransport):
    """A model worker in process: ready or not on /readyz, or unreachable altogether."""

    def __init__(self) -> None:
        self.ready = True
        self.reachable = True
        self._asgi = httpx.ASGITransport(app=Starlette(routes=[Route("/{p:path}", self.answer)]))

    async def answer(self, request: Request) -> Response:
        if request.url.path == "/readyz":
            return JSONResponse({}, status_code=200 if self.ready else 503)
        if request.url.path == "/v1/models":
            return JSONResponse(MODELS)
        return Response(status_code=404)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.reachable:
            raise httpx.ConnectError("connection refused", request=request)
        return await self._asgi.handle_async_request(request)


Told = list[tuple[str, bool, str | None]]


@pytest.fixture
def instance() -> Instance:
    return Instance()


def recorder(told: Told) -> HealthListener:
    def listener(state: InstanceState, reason: str | None) -> None:
        told.append((state.instance.id, state.healthy, reason))

    return listener


@asynccontextmanager
async def running_pool(instance: Instance, listener: HealthListener) -> AsyncIterator[InstancePool]:
    async with httpx.AsyncClient(transport=instance) as client:
        pool = InstancePool(
            StaticDiscovery([StaticInstanceConfig(url="http://w0", id="w0")]),
            client,
            lambda iid: InstanceBreaker(iid, fail_max=5, reset_seconds=30),
            probe_interval=3600,  # the test refreshes by hand
            probe_timeout=1,
            per_instance_limit=8,
            on_health_change=listener,
        )
        await pool.start()
        try:
            yield pool
        finally:
            await pool.stop()


async def test_changes_are_told_once_each_with_their_reason(instance: Instance) -> None:
    told: Told = []
    async with running_pool(instance, recorder(told)) as pool:
        assert [s.instance.id for s in pool.serving("served")] == ["w0"]
        assert told == []  # the first look is the baseline, not a change
        await pool.refresh()
        assert told == []  # still ready: nothing to tell

        instance.ready = False  # it answers, and says it is not ready (e.g. draining)
        await pool.refresh()
        assert told == [("w0", False, "not_ready")]
        await pool.refresh()
        assert len(told) == 1

        instance.ready = True
        await pool.refresh()
        assert told[-1] == ("w0", True, None)

        instance.reachable = False  # one failed probe is not an outage; two are
        await pool.refresh()
        assert len(told) == 2
        await pool.refresh()
        assert told[-1] == ("w0", False, "probe_failed")
        assert pool.serving("served") == []

        instance.reachable = True
        await pool.refresh()
        assert told[-1] == ("w0", True, None)
        assert len(told) == 4


async def test_an_instance_unready_at_the_first_look_is_told_when_it_turns_ready(
    instance: Instance,
) -> None:
    told: Told = []
    instance.ready = False
    async with running_pool(instance, recorder(told)) as pool:
        assert told == []
        instance.ready = True
        await pool.refresh()
        assert told == [("w0", True, None)]


async def test_a_failing_listener_does_not_stop_the_probes(instance: Instance) -> None:
    def broken(state: InstanceState, reason: str | None) -> None:
        raise RuntimeError("listener down")

    async with running_pool(instance, broken) as pool:
        instance.ready = False
        await pool.refresh()
        assert pool.serving("served") == []  # the state changed despite the listener
        instance.ready = True
        await pool.refresh()
        assert [s.instance.id for s in pool.serving("served")] == ["w0"]
