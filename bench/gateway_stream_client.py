"""Streaming latency client: time to first ``data:`` chunk and full-stream time, p50/p99.

Sends ``--requests`` streaming chat completions with ``--concurrency`` in flight (after
``--warmup`` untimed ones), over keep-alive connections, and prints one JSON line starting
with ``BENCH_STREAM_JSON``. A request counts as an error when the status is not 200, the
stream has no ``data: [DONE]``, it carries an ``"error"`` event, or the connection fails.

Needs aiohttp (the harness runs it with the peers venv's Python):
``python bench/gateway_stream_client.py --url http://127.0.0.1:8080/v1/chat/completions``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

BODY = {
    "model": "bench-model",
    "stream": True,
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Count from 1 to 16."}],
}


@dataclass
class Tally:
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


async def one(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], tally: Tally
) -> None:
    t0 = time.perf_counter()
    first: float | None = None
    done = False
    failed = False
    chunks = 0
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            if resp.status != 200:
                await resp.read()
                tally.error(f"status_{resp.status}")
                return
            async for line in resp.content:
                if not line.startswith(b"data:"):
                    continue
                if first is None:
                    first = time.perf_counter()
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                elif b'"error"' in payload:
                    failed = True
                else:
                    chunks += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.error(type(exc).__name__)
        return
    end = time.perf_counter()
    if failed:
        tally.error("error_event")
    elif not done or first is None:
        tally.error("no_done")
    else:
        tally.ttfb.append(first - t0)
        tally.total.append(end - t0)
        tally.chunks.append(chunks)


async def run(args: argparse.Namespace) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if args.api_key:
        headers["authorization"] = f"Bearer {args.api_key}"
    body = json.dumps({**BODY, "model": args.model}).encode()
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.request_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm = Tally()
        await asyncio.gather(
            *(one(session, args.url, body, headers, warm) for _ in range(args.warmup))
        )
        tally = Tally()
        remaining = args.requests
        deadline = time.perf_counter() + args.max_seconds

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                await one(session, args.url, body, headers, tally)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started

    def ms(values: list[float], pct: float) -> float | None:
        value = percentile(values, pct)
        return None if value is None else round(value * 1000, 3)

    ok = len(tally.total)
    return {
        "concurrency": args.concurrency,
        "requests": ok + sum(tally.errors.values()),
        "ok": ok,
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "warmup_errors": sum(warm.errors.values()),
        "elapsed_s": round(elapsed, 3),
        "streams_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "chunks_per_stream": round(sum(tally.chunks) / ok, 2) if ok else None,
        "ttfb_ms": {"p50": ms(tally.ttfb, 50), "p99": ms(tally.ttfb, 99)},
        "total_ms": {"p50": ms(tally.total, 50), "p99": ms(tally.total, 99)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="full chat completions URL")
    parser.add_argument("--api-key", default="", help="sent as a Bearer token when set")
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=32, help="untimed requests first")
    parser.add_argument("--max-seconds", type=float, default=60, help="stop starting new ones")
    parser.add_argument("--request-timeout", type=float, default=30)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print("BENCH_STREAM_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
