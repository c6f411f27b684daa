"""Session benchmark (`make bench-session`), against a throwaway real PostgreSQL:

1. append throughput: one-item appends to one conversation from 1 and from 32 concurrent
   clients (the worst case: every append takes the same row lock);
2. the time to build a turn's context (``POST /v1/context``, cached token counts, a budget
   of ``--budget`` tokens), p50 and p99, for conversations of 10, 1,000 and 10,000 items;
3. the gateway's added latency of a ``responses.create`` turn over the equivalent
   ``chat.completions.create``, p50 and p99 at concurrency 1 and 32, in front of the stub
   upstream (``bench/stub_upstream.py``): stateless (``store: false``) and stored; at
   concurrency 1 the three are called in turn, so that other load on the machine weighs on
   each alike.

Every service is a subprocess on a free loopback port; logs go to a temporary directory.
``--quick`` takes fewer samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from switchyard_cli.processes import ChildProcess, free_port, stop_all  # noqa: E402
from switchyard_gateway.keys import hash_key  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402

TENANT = {"x-switchyard-tenant": "bench"}
KEY = "sk-bench-session-0000000000"
MODEL = "bench-model"
GATEWAY_MODULE = "switchyard_gateway"


def start(
    children: list[ChildProcess],
    name: str,
    argv: list[str],
    env: dict[str, str],
    logs: Path,
    port: int,
) -> str:
    """``argv`` as a child (stopped with the others, even when it never became ready)."""
    children.append(ChildProcess(name, argv, logs / f"{name}.log", env=env).start())
    url = f"http://127.0.0.1:{port}"
    children[-1].wait_ready(f"{url}/readyz", 120)
    return url


def session_service(children: list[ChildProcess], logs: Path, database_url: str) -> str:
    env = {"SWITCHYARD_SESSION_DATABASE_URL": database_url,
           "SWITCHYARD_SESSION_DATA_DIR": str(logs / "session"),
           "SWITCHYARD_SESSION_LOG_LEVEL": "WARNING"}  # fmt: skip
    subprocess.run([sys.executable, "-m", "switchyard_session", "migrate"],
                   env={**os.environ, **env}, check=True, capture_output=True)  # fmt: skip
    port = free_port()
    env["SWITCHYARD_SESSION_PORT"] = str(port)
    argv = [sys.executable, "-m", "switchyard_session"]
    return start(children, "session", argv, env, logs, port)


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms   (n={len(ms)})"


async def timed_calls(
    call: Callable[[], Awaitable[None]], total: int, concurrency: int
) -> tuple[list[float], float]:
    """``total`` calls from ``concurrency`` clients; their latencies and the wall time."""
    latencies: list[float] = []
    remaining = total

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def appends(url: str, total: int) -> None:
    async with httpx.AsyncClient(base_url=url, headers=TENANT, timeout=60) as http:

        async def probe() -> None:
            (await http.get("/healthz")).raise_for_status()

        latencies, _ = await timed_calls(probe, total, 1)
        print(f"reference: GET /healthz of the session service   {percentiles(latencies)}")
        for concurrency in (1, 32):
            conv = (await http.post("/v1/conversations", json={})).json()["id"]

            async def append(conv: str = conv) -> None:
                item = {"role": "user", "content": "one more line of the conversation"}
                r = await http.post(f"/v1/conversations/{conv}/items", json={"items": [item]})
                r.raise_for_status()

            latencies, wall = await timed_calls(append, total, concurrency)
            print(f"append  {concurrency:>2} clients: {total / wall:8.0f} appends/s   "
                  f"{percentiles(latencies)}")  # fmt: skip


async def context_builds(url: str, samples: int, budget: int) -> None:
    async with httpx.AsyncClient(base_url=url, headers=TENANT, timeout=60) as http:
        for size in (10, 1_000, 10_000):
            conv = (await http.post("/v1/conversations", json={})).json()["id"]
            line = {"role": "user", "content": "a line of about ten tokens in the history"}
            per_call = min(size, 20)
            await asyncio.gather(*(
                http.post(f"/v1/conversations/{conv}/items", json={"items": [line] * per_call})
                for _ in range(size // per_call)
            ))  # fmt: skip
            full = await http.post("/v1/context", json={"model": MODEL, "conversation": conv})
            refs = [e["ref"] for e in full.json()["items"]]
            for start in range(0, len(refs), 5_000):
                counts = [{"ref": r, "tokens": 10} for r in refs[start : start + 5_000]]
                await http.post("/v1/token_counts", json={"model": MODEL, "counts": counts})
            body = {"model": MODEL, "conversation": conv, "budget": budget}

            async def build(body: dict = body) -> None:
                (await http.post("/v1/context", json=body)).raise_for_status()

            for _ in range(20):
                await build()  # warm-up
            latencies, _ = await timed_calls(build, samples, 1)
            print(f"context {len(refs):>6} items (budget {budget}): {percentiles(latencies)}")


async def interleaved(
    calls: dict[str, Callable[[], Awaitable[None]]], samples: int
) -> dict[str, list[float]]:
    """One client calling each case in turn, ``samples`` times: a burst of other load on the
    machine weighs on every case alike, so their difference is the added latency."""
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(samples):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            latencies[name].append(time.perf_counter() - started)
    return latencies


async def gateway_overhead(gateway: str, samples: int) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
    turn = {"model": MODEL, "input": "Hello", "max_output_tokens": 8}
    cases = {
        "chat.completions.create": ("/v1/chat/completions", chat),
        "responses.create store=false": ("/v1/responses", {**turn, "store": False}),
        "responses.create stored": ("/v1/responses", turn),
    }
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=60) as http:
        calls = {}
        for name, (path, body) in cases.items():

            async def call(path: str = path, body: dict = body) -> None:
                (await http.post(path, json=body)).raise_for_status()

            calls[name] = call
            for _ in range(20):
                await call()
        by_case = await interleaved(calls, samples)
        for name, latencies in by_case.items():
            print(f"gateway c= 1 {name:<30} {percentiles(latencies)}")
        base = statistics.median(by_case["chat.completions.create"]) * 1000
        for name in list(cases)[1:]:
            added = statistics.median(by_case[name]) * 1000 - base
            print(f"gateway c= 1 {name:<30} adds {added:5.2f} ms p50 over a chat completion")
        for name, call in calls.items():
            latencies, _ = await timed_calls(call, samples, 32)
            print(f"gateway c=32 {name:<30} {percentiles(latencies)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--budget", type=int, default=2000, help="context budget in tokens")
    args = parser.parse_args()
    samples = 200 if args.quick else 1000
    logs = Path(tempfile.mkdtemp(prefix="session-bench-"))
    print(f"logs in {logs}")
    server = start_postgres()
    children: list[ChildProcess] = []
    try:
        url = session_service(children, logs, server.create_database("bench"))
        asyncio.run(appends(url, samples))
        asyncio.run(context_builds(url, samples, args.budget))
        stub_port = free_port()
        stub = [sys.executable, str(ROOT / "bench" / "stub_upstream.py"),
                "--port", str(stub_port), "--model", MODEL]  # fmt: skip
        start(children, "stub", stub, {}, logs, stub_port)
        port = free_port()
        gateway = start(children, "gateway", [sys.executable, "-m", GATEWAY_MODULE], {
            "SWITCHYARD_GATEWAY_PORT": str(port),
            "SWITCHYARD_GATEWAY_STATIC_WORKERS": json.dumps(
                [{"url": f"http://127.0.0.1:{stub_port}"}]),
            "SWITCHYARD_GATEWAY_API_KEY_HASHES": json.dumps([hash_key(KEY)]),
            "SWITCHYARD_GATEWAY_SESSION_URL": url,
            "SWITCHYARD_GATEWAY_LOG_LEVEL": "WARNING",
        }, logs, port)  # fmt: skip
        asyncio.run(gateway_overhead(gateway, samples))
    finally:
        stop_all(reversed(children))
        server.stop("immediate")


if __name__ == "__main__":
    main()
