"""Probes of any OpenAI-compatible server: the health path it has is found and remembered."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from switchyard_gateway.probes import ProbeFailedError, ProbePlan, Prober

MODELS = {"object": "list", "data": [{"id": "served", "object": "model"}]}


class Server:
    """An in-process ASGI server with the paths a test gives it; counts what it was asked."""

    def __init__(self, answers: dict[str, tuple[int, object]]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.answer)])

    async def answer(self, request: Request) -> Response:
        self.asked.append(request.url.path)
        found = self.answers.get(request.url.path)
        if found is None:
            return Response(status_code=404)
        status, body = found
        return JSONResponse(body, status_code=status)


@pytest.fixture
def server() -> Server:
    return Server({})


@pytest.fixture
async def prober(server: Server):  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport) as client:
        yield Prober(client, timeout=1.0)


URL = "http://instance"


async def test_a_model_worker_is_probed_on_readyz_with_its_load(
    server: Server, prober: Prober
) -> None:
    server.answers.update({
        "/readyz": (200, {"status": "ready"}),
        "/v1/models": (200, MODELS),
        "/load": (200, {"queued": 3, "max_queue": 8}),
    })  # fmt: skip
    plan = ProbePlan()
    result = await prober.probe(URL, plan)
    assert (result.healthy, result.models) == (True, frozenset({"served"}))
    assert (result.queued, result.max_queue) == (3, 8)
    assert plan.health_path == "/readyz"
    server.answers["/readyz"] = (503, {"status": "not ready"})  # an answer: not ready
    assert not (await prober.probe(URL, plan)).healthy
    assert plan.health_path == "/readyz"


async def test_vllm_style_health_is_found_and_remembered_and_load_is_optional(
    server: Server, prober: Prober
) -> None:
    server.answers.update({"/health": (200, {}), "/v1/models": (200, MODELS)})
    plan = ProbePlan()
    result = await prober.probe(URL, plan)
    assert (result.healthy, result.models, result.queued) == (True, frozenset({"served"}), None)
    assert (plan.health_path, plan.has_load) == ("/health", False)
    server.asked.clear()
    await prober.probe(URL, plan)
    assert sorted(server.asked) == ["/health", "/v1/models"]  # no detection, no /load


async def test_a_bare_openai_server_is_healthy_when_it_lists_its_models(
    server: Server, prober: Prober
) -> None:
    server.answers["/v1/models"] = (200, MODELS)
    plan = ProbePlan()
    result = await prober.probe(URL, plan)
    assert (result.healthy, result.models) == (True, frozenset({"served"}))
    assert plan.health_path == "/v1/models"
    server.asked.clear()
    await prober.probe(URL, plan)
    assert server.asked.count("/v1/models") == 1  # one request serves health and models


async def test_a_path_that_stops_answering_is_detected_again(
    server: Server, prober: Prober
) -> None:
    server.answers.update({"/health": (200, {}), "/v1/models": (200, MODELS)})
    plan = ProbePlan()
    await prober.probe(URL, plan)
    assert plan.health_path == "/health"
    # Another server now listens there: a model-worker.
    server.answers = {"/readyz": (200, {}), "/v1/models": (200, MODELS)}
    with pytest.raises(ProbeFailedError):
        await prober.probe(URL, plan)
    assert plan.health_path is None
    assert (await prober.probe(URL, plan)).healthy
    assert plan.health_path == "/readyz"


async def test_a_server_answering_no_health_path_fails_the_probe(
    server: Server, prober: Prober
) -> None:
    with pytest.raises(ProbeFailedError):
        await prober.probe(URL, ProbePlan())
    assert server.asked == ["/readyz", "/health", "/v1/models"]


async def test_models_come_from_discovery_when_the_list_is_not_given(
    server: Server, prober: Prober
) -> None:
    server.answers.update({"/health": (200, {}), "/v1/models": (401, {"error": "key"})})
    result = await prober.probe(URL, ProbePlan())
    assert (result.healthy, result.models) == (True, None)
