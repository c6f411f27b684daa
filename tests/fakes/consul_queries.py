"""The fake Consul agent's blocking queries: ``/v1/health/...``, ``/v1/catalog/...``, and
``/v1/status/leader``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.consul_state import FakeConsul, reply


def query_routes(consul: FakeConsul) -> list[Route]:
    async def health_service(request: Request) -> Response:
        await consul.wait_for_change(request)
        found = consul.matching(request.path_params["name"], request)
        entries = [consul.health_entry(s) for s in found]
        if request.query_params.get("passing", "0") not in ("0", "false"):
            entries = [e for e in entries if all(c["Status"] == "passing" for c in e["Checks"])]
        return reply(entries, consul)

    async def health_checks(request: Request) -> Response:
        await consul.wait_for_change(request)
        name = request.path_params["name"]
        checks = [c.to_json(consul.node) for c in consul.checks.values() if c.service_name == name]
        return reply(checks, consul)

    async def catalog_services(request: Request) -> Response:
        await consul.wait_for_change(request)
        out: dict[str, list[str]] = {"consul": []}
        for svc in consul.services.values():
            tags = out.setdefault(svc.name, [])
            tags.extend(t for t in svc.tags if t not in tags)
        return reply(out, consul)

    async def catalog_service(request: Request) -> Response:
        await consul.wait_for_change(request)
        found = consul.matching(request.path_params["name"], request)
        return reply([consul.catalog_entry(s) for s in found], consul)

    async def leader(_: Request) -> Response:
        return reply(f"{consul.node_address}:8300")

    return [
        Route("/v1/health/service/{name}", health_service),
        Route("/v1/health/checks/{name}", health_checks),
        Route("/v1/catalog/services", catalog_services),
        Route("/v1/catalog/service/{name}", catalog_service),
        Route("/v1/status/leader", leader),
    ]
