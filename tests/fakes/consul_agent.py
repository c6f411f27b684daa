"""The fake Consul agent's ``/v1/agent/...`` endpoints: register (with checks), deregister,
maintenance, and the agent's own views of services and checks."""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.consul_state import (
    Check,
    FakeConsul,
    Service,
    norm,
    parse_duration,
    reply,
    text,
)


def agent_routes(consul: FakeConsul) -> list[Route]:
    async def register(request: Request) -> Response:
        try:
            body = norm(orjson.loads(await request.body() or b"{}"))
        except orjson.JSONDecodeError as exc:
            return text(f"Request decode failed: {exc}", 400)
        name = body.get("name")
        if not name:
            return text("Missing service name", 400)
        sid = body.get("id") or name
        raw_checks = [norm(c) for c in (body.get("checks") or [])]
        if body.get("check"):
            raw_checks.insert(0, norm(body["check"]))
        replace = "replace-existing-checks" in request.query_params
        existing = consul.services.get(sid)
        index = consul.index + 1
        svc = Service(
            id=sid,
            name=name,
            tags=list(body.get("tags") or []),
            address=body.get("address") or "",
            port=int(body.get("port") or 0),
            meta={str(k): str(v) for k, v in (body.get("meta") or {}).items()},
            create_index=existing.create_index if existing else index,
            modify_index=index,
        )
        new_checks: list[Check] = []
        for n, raw in enumerate(raw_checks, start=1):
            http = raw.get("http") or ""
            try:
                interval = parse_duration(raw.get("interval"))
                timeout = parse_duration(raw.get("timeout")) or 10.0
                dereg = parse_duration(raw.get("deregistercriticalserviceafter"))
            except ValueError as exc:
                return text(f"Invalid check: {exc}", 400)
            if http and interval <= 0:
                return text("Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks", 400)
            default_id = f"service:{sid}" if len(raw_checks) == 1 else f"service:{sid}:{n}"
            check_id = raw.get("checkid") or raw.get("id") or default_id
            old = consul.checks.get(check_id)
            new_checks.append(
                Check(
                    check_id=check_id,
                    name=raw.get("name") or f"Service '{name}' check",
                    service_id=sid,
                    service_name=name,
                    service_tags=svc.tags,
                    # Consul keeps the status of a check it already runs; new ones start
                    # critical unless the definition says otherwise.
                    status=old.status if old else (raw.get("status") or "critical"),
                    output=old.output if old else "",
                    critical_since=old.critical_since if old else time.monotonic(),
                    create_index=old.create_index if old else index,
                    notes=raw.get("notes") or "",
                    http=http,
                    interval=interval,
                    timeout=timeout,
                    deregister_after=dereg,
                )
            )
        if existing is not None and replace:
            for check in consul.checks_of(sid):
                if not check.check_id.startswith("_service_maintenance:"):
                    consul.drop_check(check)
        for check in new_checks:
            if (old := consul.checks.get(check.check_id)) is not None:
                consul.drop_check(old)
            if check.status != "critical":
                check.critical_since = None
            consul.checks[check.check_id] = check
            if check.http:
                check.task = asyncio.create_task(consul.run_http_check(check))
        consul.services[sid] = svc
        await consul.bump()
        return Response(status_code=200)

    async def deregister(request: Request) -> Response:
        sid = request.path_params["service_id"]
        if sid not in consul.services:
            return text(
                f'Unknown service ID "{sid}". Ensure that the service ID is passed, '
                "not the service name.",
                404,
            )
        await consul.remove_service(sid)
        return Response(status_code=200)

    async def maintenance(request: Request) -> Response:
        sid = request.path_params["service_id"]
        enable = request.query_params.get("enable")
        if enable not in ("true", "false"):
            return text("Missing value for enable", 400)
        svc = consul.services.get(sid)
        if svc is None:
            return text(f'Unknown service ID "{sid}"', 404)
        check_id = f"_service_maintenance:{sid}"
        if enable == "true" and check_id not in consul.checks:
            reason = request.query_params.get("reason") or (
                "Maintenance mode is enabled for this service, but no reason was provided. "
                "This is a default message."
            )
            consul.checks[check_id] = Check(
                check_id=check_id,
                name="Service Maintenance Mode",
                service_id=sid,
                service_name=svc.name,
                service_tags=list(svc.tags),
                status="critical",
                kind="maintenance",
                notes=reason,
                create_index=consul.index + 1,
            )
            await consul.bump()
        elif enable == "false" and check_id in consul.checks:
            consul.drop_check(consul.checks[check_id])
            await consul.bump()
        return Response(status_code=200)

    async def agent_services(_: Request) -> Response:
        return reply({s.id: s.to_json(consul.datacenter) for s in consul.services.values()})

    async def agent_service(request: Request) -> Response:
        svc = consul.services.get(request.path_params["service_id"])
        if svc is None:
            return text("unknown service ID", 404)
        return reply(svc.to_json(consul.datacenter), consul)

    async def agent_checks(_: Request) -> Response:
        return reply({c.check_id: c.to_json(consul.node) for c in consul.checks.values()})

    return [
        Route("/v1/agent/service/register", register, methods=["PUT"]),
        Route("/v1/agent/service/deregister/{service_id}", deregister, methods=["PUT"]),
        Route("/v1/agent/service/maintenance/{service_id}", maintenance, methods=["PUT"]),
        Route("/v1/agent/services", agent_services),
        Route("/v1/agent/service/{service_id}", agent_service),
        Route("/v1/agent/checks", agent_checks),
    ]
