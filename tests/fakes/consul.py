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
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette

from tests.fakes.consul_agent import agent_routes
from tests.fakes.consul_queries import query_routes
from tests.fakes.consul_state import FakeConsul


def build_app(consul: FakeConsul) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        reaper = asyncio.create_task(consul.reap())
        yield
        reaper.cancel()
        for check in list(consul.checks.values()):
            consul.drop_check(check)
        await consul.http.aclose()

    return Starlette(routes=[*agent_routes(consul), *query_routes(consul)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    args = parser.parse_args()
    app = build_app(FakeConsul(address=args.host))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
