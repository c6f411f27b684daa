"""A fake Consul agent: the HTTP API endpoints Switchyard uses, with Consul's shapes.

Run it as a real server: ``python -m tests.fakes.consul --port 8500``. It implements

- ``PUT /v1/agent/service/register`` (keys case-insensitive, like Consul; ``Check`` or
  ``Checks``; ``replace-existing-checks``), ``PUT /v1/agent/service/deregister/<id>``,
  ``PUT /v1/agent/service/maintenance/<id>?enable=&reason=``, ``GET /v1/agent/services``,
  ``GET /v1/agent/service/<id>``, ``GET /v1/agent/checks``;
- HTTP checks that it really runs on their interval (2xx passing, 429 warning, anything else
  or a timeout critical, first run at once), and ``DeregisterCriticalServiceAfter`` reaping;
- ``GET /v1/health/service/<name>`` (``passing``, ``tag``), ``GET /v1/health/checks/<name>``,
  ``GET /v1/catalog/services``, ``GET /v1/catalog/service/<name>`` and
  ``GET /v1/status/leader``, all with ``X-Consul-Index`` and blocking-query semantics:
  ``index`` + ``wait`` (default 5m, at most 10m, plus up to wait/16 of jitter) block until
  the index passes the one given.

One index for the whole agent is bumped on every change: a correct (if coarse) Consul index.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DURATION = re.compile(r"([\d.]+)(ns|us|µs|ms|s|m|h)")
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_WAIT = 600.0


def parse_duration(text: str | None) -> float:
    if not text:
        return 0.0
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Go's time.Duration.String() for the durations checks use."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    s = f"{secs:g}s"
    if hours:
        return f"{hours}h{minutes}m{s}"
    return f"{minutes}m{s}" if minutes else s


def norm(obj: Any) -> Any:
    """Consul decodes request bodies case-insensitively (and accepts snake_case)."""
    if isinstance(obj, dict):
        return {k.lower().replace("_", ""): v for k, v in obj.items()}
    return obj


@dataclass
class Check:
    check_id: str
    name: str
    service_id: str
    service_name: str
    service_tags: list[str]
    status: str
    create_index: int
    notes: str = ""
    output: str = ""
    http: str = ""
    interval: float = 0.0
    timeout: float = 10.0
    deregister_after: float = 0.0
    critical_since: float | None = None
    modify_index: int = 0
    kind: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self, node: str) -> dict[str, Any]:
        definition: dict[str, Any] = {}
        if self.http:
            definition = {
                "HTTP": self.http,
                "Interval": format_duration(self.interval),
                "Timeout": format_duration(self.timeout),
                "DeregisterCriticalServiceAfter": format_duration(self.deregister_after),
            }
        return {
            "Node": node,
            "CheckID": self.check_id,
            "Name": self.name,
            "Status": self.status,
            "Notes": self.notes,
            "Output": self.output,
            "ServiceID": self.service_id,
            "ServiceName": self.service_name,
            "ServiceTags": list(self.service_tags),
            "Type": "http" if self.http else self.kind,
            "Definition": definition,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index or self.create_index,
        }


@dataclass
class Service:
    id: str
    name: str
    tags: list[str]
    address: str
    port: int
    meta: dict[str, str]
    create_index: int
    modify_index: int

    def to_json(self, datacenter: str) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Service": self.name,
            "Tags": list(self.tags),
            "Address": self.address,
            "TaggedAddresses": {},
            "Meta": dict(self.meta),
            "Port": self.port,
            "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False,
            "Datacenter": datacenter,
            "CreateIndex": self.create_index,
            "ModifyIndex": self.modify_index,
        }


class FakeConsul:
    def __init__(self, node: str = "fake-node", address: str = "127.0.0.1") -> None:
        self.node = node
        self.node_address = address
        self.node_id = str(uuid.uuid4())
        self.datacenter = "dc1"
        self.index = 1
        self.services: dict[str, Service] = {}
        self.checks: dict[str, Check] = {}
        self.changed = asyncio.Condition()
        self.http = httpx.AsyncClient(trust_env=False)

    # -- state ---------------------------------------------------------------------------

    async def bump(self) -> int:
        async with self.changed:
            self.index += 1
            self.changed.notify_all()
        return self.index

    async def wait_for_change(self, request: Request) -> None:
        """Blocking-query semantics: hold the answer until the index passes ``index``."""
        raw = request.query_params.get("index")
        if not raw or int(raw) <= 0:
            return
        wanted = int(raw)
        wait = min(parse_duration(request.query_params.get("wait")) or 300.0, MAX_WAIT)
        wait += random.uniform(0, wait / 16)
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(lambda: self.index > wanted), wait)

    def node_json(self) -> dict[str, Any]:
        return {
            "ID": self.node_id,
            "Node": self.node,
            "Address": self.node_address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": {"lan": self.node_address, "wan": self.node_address},
            "Meta": {"consul-network-segment": ""},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }

    def serf_check(self) -> dict[str, Any]:
        return {
            "Node": self.node,
            "CheckID": "serfHealth",
            "Name": "Serf Health Status",
            "Status": "passing",
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
            "Definition": {},
            "CreateIndex": 1,
            "ModifyIndex": 1,
        }

    def checks_of(self, service_id: str) -> list[Check]:
        return [c for c in self.checks.values() if c.service_id == service_id]

    async def remove_service(self, service_id: str) -> None:
        self.services.pop(service_id, None)
        for check in self.checks_of(service_id):
            self.drop_check(check)
        await self.bump()

    def drop_check(self, check: Check) -> None:
        self.checks.pop(check.check_id, None)
        if check.task is not None:
            check.task.cancel()

    async def set_status(self, check: Check, status: str, output: str) -> None:
        check.output = output
        if status == "critical" and check.critical_since is None:
            check.critical_since = time.monotonic()
        elif status != "critical":
            check.critical_since = None
        if status != check.status:
            check.status = status
            check.modify_index = await self.bump()

    async def run_http_check(self, check: Check) -> None:
        while True:
            try:
                resp = await self.http.get(check.http, timeout=check.timeout)
                status = (
                    "passing"
                    if 200 <= resp.status_code < 300
                    else "warning"
                    if resp.status_code == 429
                    else "critical"
                )
                output = f"HTTP GET {check.http}: {resp.status_code} {resp.reason_phrase} Output: "
                output += resp.text[:4096]
            except httpx.HTTPError as exc:
                status, output = "critical", f'Get "{check.http}": {exc!r}'
            if check.check_id not in self.checks:
                return
            await self.set_status(check, status, output)
            await asyncio.sleep(check.interval)

    async def reap(self) -> None:
        """Deregister services whose check stayed critical past DeregisterCriticalServiceAfter."""
        while True:
            await asyncio.sleep(0.2)
            now = time.monotonic()
            for check in list(self.checks.values()):
                if (
                    check.deregister_after > 0
                    and check.critical_since is not None
                    and now - check.critical_since >= check.deregister_after
                    and check.service_id in self.services
                ):
                    await self.remove_service(check.service_id)

    # -- JSON ----------------------------------------------------------------------------

    def health_entry(self, svc: Service) -> dict[str, Any]:
        checks = [self.serf_check()] + [c.to_json(self.node) for c in self.checks_of(svc.id)]
        return {"Node": self.node_json(), "Service": svc.to_json(self.datacenter), "Checks": checks}

    def catalog_entry(self, svc: Service) -> dict[str, Any]:
        return {
            "ID": self.node_id,
            "Node": self.node,
            "Address": self.node_address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": {"lan": self.node_address, "wan": self.node_address},
            "NodeMeta": {"consul-network-segment": ""},
            "ServiceID": svc.id,
            "ServiceName": svc.name,
            "ServiceTags": list(svc.tags),
            "ServiceAddress": svc.address,
            "ServiceTaggedAddresses": {},
            "ServiceWeights": {"Passing": 1, "Warning": 1},
            "ServiceMeta": dict(svc.meta),
            "ServicePort": svc.port,
            "ServiceEnableTagOverride": False,
            "CreateIndex": svc.create_index,
            "ModifyIndex": svc.modify_index,
        }

    def matching(self, name: str, request: Request) -> list[Service]:
        tags = request.query_params.getlist("tag")
        return [
            s
            for s in sorted(self.services.values(), key=lambda s: s.id)
            if s.name == name and all(t in s.tags for t in tags)
        ]


def reply(body: Any, consul: FakeConsul | None = None, status: int = 200) -> Response:
    headers = {}
    if consul is not None:
        headers = {
            "X-Consul-Index": str(consul.index),
            "X-Consul-KnownLeader": "true",
            "X-Consul-LastContact": "0",
        }
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def text(body: str, status: int) -> Response:
    return Response(body, status, media_type="text/plain; charset=utf-8")


def build_app(consul: FakeConsul) -> Starlette:
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

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        reaper = asyncio.create_task(consul.reap())
        yield
        reaper.cancel()
        for check in list(consul.checks.values()):
            consul.drop_check(check)
        await consul.http.aclose()

    return Starlette(
        routes=[
            Route("/v1/agent/service/register", register, methods=["PUT"]),
            Route("/v1/agent/service/deregister/{service_id}", deregister, methods=["PUT"]),
            Route("/v1/agent/service/maintenance/{service_id}", maintenance, methods=["PUT"]),
            Route("/v1/agent/services", agent_services),
            Route("/v1/agent/service/{service_id}", agent_service),
            Route("/v1/agent/checks", agent_checks),
            Route("/v1/health/service/{name}", health_service),
            Route("/v1/health/checks/{name}", health_checks),
            Route("/v1/catalog/services", catalog_services),
            Route("/v1/catalog/service/{name}", catalog_service),
            Route("/v1/status/leader", leader),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    args = parser.parse_args()
    app = build_app(FakeConsul(address=args.host))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
