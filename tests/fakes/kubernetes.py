"""A fake Kubernetes API server for discovery.k8s.io/v1 EndpointSlices.

Run it as a real server: ``python -m tests.fakes.kubernetes --port 6443``. It serves what
the ``kubernetes`` client uses for EndpointSlices, with the API's shapes:

- ``GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices`` (``labelSelector`` with
  ``k=v``, ``k==v``, ``k!=v``): an ``EndpointSliceList`` with ``metadata.resourceVersion``;
  with ``watch=true``: newline-delimited watch events (``ADDED``/``MODIFIED``/``DELETED``)
  after ``resourceVersion``, held open up to ``timeoutSeconds``; a compacted version gets
  an ``ERROR`` event carrying a 410 ``Status``, as the real API does;
- ``POST`` (create), ``GET``/``PUT``/``DELETE`` ``.../endpointslices/<name>``;
- ``GET /version``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

GROUP_VERSION = "discovery.k8s.io/v1"
# Events older than this many versions are "compacted": a watch from before gets 410.
HISTORY = 1000


@dataclass
class Store:
    version: int = 1
    slices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def record(self, kind: str, namespace: str, obj: dict[str, Any]) -> None:
        async with self.changed:
            self.events.append((self.version, kind, namespace, copy.deepcopy(obj)))
            del self.events[:-HISTORY]
            self.changed.notify_all()

    def next_version(self) -> str:
        self.version += 1
        return str(self.version)


def matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        else:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
    return True


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def reply(body: Any, code: int = 200) -> Response:
    return Response(orjson.dumps(body), code, media_type="application/json")


def build_app(store: Store) -> Starlette:
    def labels_of(obj: dict[str, Any]) -> dict[str, str]:
        return (obj.get("metadata") or {}).get("labels") or {}

    async def collection(request: Request) -> Response:
        ns = request.path_params["ns"]
        selector = request.query_params.get("labelSelector", "")
        if request.query_params.get("watch") in ("true", "1"):
            return watch(request, ns, selector)
        items = [
            o
            for (n, _), o in sorted(store.slices.items())
            if n == ns and matches(selector, labels_of(o))
        ]
        return reply(
            {
                "kind": "EndpointSliceList",
                "apiVersion": GROUP_VERSION,
                "metadata": {"resourceVersion": str(store.version)},
                "items": items,
            }
        )

    def watch(request: Request, ns: str, selector: str) -> Response:
        since = int(request.query_params.get("resourceVersion") or store.version)
        timeout = float(request.query_params.get("timeoutSeconds") or 1800)

        async def stream() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + timeout
            oldest = store.events[0][0] if store.events else store.version
            if since < oldest - 1 and len(store.events) >= HISTORY:
                gone = status(410, "Expired", f"too old resource version: {since} ({oldest})")
                yield orjson.dumps({"type": "ERROR", "object": gone}) + b"\n"
                return
            seen = since
            while True:
                for version, kind, namespace, obj in list(store.events):
                    if version > seen:
                        seen = version
                        if namespace == ns and matches(selector, labels_of(obj)):
                            yield orjson.dumps({"type": kind, "object": obj}) + b"\n"
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                async with store.changed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            store.changed.wait_for(lambda: store.version > seen), left
                        )

        return StreamingResponse(stream(), media_type="application/json")

    async def create(request: Request) -> Response:
        ns = request.path_params["ns"]
        obj = orjson.loads(await request.body())
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            return reply(status(422, "Invalid", "metadata.name: Required value"), 422)
        if (ns, name) in store.slices:
            msg = f'endpointslices.discovery.k8s.io "{name}" already exists'
            return reply(status(409, "AlreadyExists", msg), 409)
        meta.update(
            namespace=ns,
            uid=str(uuid.uuid4()),
            resourceVersion=store.next_version(),
            creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            generation=1,
        )
        obj.update(apiVersion=GROUP_VERSION, kind="EndpointSlice")
        store.slices[(ns, name)] = obj
        await store.record("ADDED", ns, obj)
        return reply(obj, 201)

    def not_found(name: str) -> Response:
        msg = f'endpointslices.discovery.k8s.io "{name}" not found'
        return reply(status(404, "NotFound", msg), 404)

    async def item(request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        current = store.slices.get((ns, name))
        if current is None:
            return not_found(name)
        if request.method == "GET":
            return reply(current)
        if request.method == "DELETE":
            del store.slices[(ns, name)]
            store.next_version()
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = str(store.version)
            await store.record("DELETED", ns, gone)
            details = {"name": name, "group": "discovery.k8s.io", "kind": "endpointslices"}
            done = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            return reply({**done, "details": details})
        obj = orjson.loads(await request.body())
        meta = obj.setdefault("metadata", {})
        meta.update(
            namespace=ns,
            name=name,
            uid=current["metadata"]["uid"],
            creationTimestamp=current["metadata"]["creationTimestamp"],
            generation=int(current["metadata"].get("generation", 1)) + 1,
            resourceVersion=store.next_version(),
        )
        obj.update(apiVersion=GROUP_VERSION, kind="EndpointSlice")
        store.slices[(ns, name)] = obj
        await store.record("MODIFIED", ns, obj)
        return reply(obj)

    async def version(_: Request) -> Response:
        return reply({"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake"})

    base = "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
    return Starlette(
        routes=[
            Route(base, collection, methods=["GET"]),
            Route(base, create, methods=["POST"]),
            Route(base + "/{name}", item, methods=["GET", "PUT", "DELETE"]),
            Route("/version", version),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    args = parser.parse_args()
    uvicorn.run(build_app(Store()), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
