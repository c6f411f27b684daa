"""The fake Consul agent's state: services, checks (run for real), one Consul index, and
blocking-query waits; the HTTP answers in Consul's shapes (see ``tests.fakes.consul``)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response

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
