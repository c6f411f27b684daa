"""A fast local webhook receiver for `make bench-webhook`: answers 200 to every POST and
counts deliveries per (path, webhook-id); ``GET /stats`` reports totals and duplicates.

Usage: python bench/webhook_receiver.py PORT
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from aiohttp import web

seen: Counter[tuple[str, str]] = Counter()
times = {"first": 0.0, "last": 0.0}


async def receive(request: web.Request) -> web.Response:
    await request.read()
    now = time.time()
    times["first"] = times["first"] or now
    times["last"] = now
    seen[(request.path, request.headers.get("webhook-id", ""))] += 1
    return web.Response(text="ok")


async def stats(_: web.Request) -> web.Response:
    total = sum(seen.values())
    return web.json_response(
        {"total": total, "unique": len(seen), "duplicates": total - len(seen), **times}
    )


async def reset(_: web.Request) -> web.Response:
    seen.clear()
    times.update(first=0.0, last=0.0)
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app.router.add_post("/hook/{n}", receive)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
