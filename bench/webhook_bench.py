"""Webhook delivery benchmark (`make bench-webhook`): sustained deliveries per second from
the webhook service's dispatchers to a local receiver, on a throwaway PostgreSQL, with one
and with two dispatcher processes, and the duplicates the receiver saw.

For each run: a fresh database; a loader process (the webhook service with its dispatcher
off) creates ``--endpoints`` endpoints and publishes events until ``--deliveries``
deliveries are pending; then the dispatcher processes start and drain the outbox. The rate
is deliveries / (last delivery - first delivery) as the receiver timed them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from switchyard_cli.processes import ChildProcess, free_port, stop_all, wait_until  # noqa: E402
from tests.support.postgres import start_postgres  # noqa: E402

EVENT = "batch.completed"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def webhook_process(
    children: list[ChildProcess], logs: Path, name: str, database_url: str, dispatcher: bool
) -> str:
    """A webhook service as a child in ``children`` (stopped by the caller, ready or not)."""
    port = free_port()
    env = {
        "SWITCHYARD_WEBHOOK_PORT": str(port),
        "SWITCHYARD_WEBHOOK_DATA_DIR": str(logs / name),
        "SWITCHYARD_WEBHOOK_DATABASE_URL": database_url,
        "SWITCHYARD_WEBHOOK_AUTO_MIGRATE": "true",
        "SWITCHYARD_WEBHOOK_DISPATCHER_ENABLED": str(dispatcher).lower(),
        "SWITCHYARD_WEBHOOK_DISPATCHER_CONCURRENCY": "128",
        "SWITCHYARD_WEBHOOK_DISPATCHER_BATCH_SIZE": "100",
        "SWITCHYARD_WEBHOOK_DISPATCHER_POLL_SECONDS": "0.05",
        "SWITCHYARD_WEBHOOK_ENDPOINT_CONCURRENCY": "32",
        "SWITCHYARD_WEBHOOK_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "switchyard_webhook"]
    children.append(ChildProcess(name, argv, logs / f"{name}.log", env=env).start())
    url = f"http://127.0.0.1:{port}"
    children[-1].wait_ready(f"{url}/readyz", 60)
    return url


async def load(url: str, receiver: str, endpoints: int, events: int) -> None:
    headers = {"x-switchyard-tenant": "bench"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        for n in range(endpoints):
            r = await http.post(
                "/v1/webhook_endpoints",
                json={"name": f"e{n}", "url": f"{receiver}/hook/{n}", "event_types": [EVENT]},
            )
            r.raise_for_status()
        gate = asyncio.Semaphore(16)

        async def publish(i: int) -> None:
            async with gate:
                body = {"type": EVENT, "tenant": "bench", "data": {"id": f"batch_{i}"}}
                (await http.post("/internal/v1/events", json=body)).raise_for_status()

        await asyncio.gather(*(publish(i) for i in range(events)))


def run(server: object, logs: Path, receiver: str, args: argparse.Namespace, k: int) -> dict:
    database_url = server.create_database()  # type: ignore[attr-defined]
    events = args.deliveries // args.endpoints
    expected = events * args.endpoints
    loader: list[ChildProcess] = []
    try:
        url = webhook_process(loader, logs, f"loader-{k}", database_url, dispatcher=False)
        asyncio.run(load(url, receiver, args.endpoints, events))
    finally:
        stop_all(loader)
    httpx.post(f"{receiver}/reset").raise_for_status()
    dispatchers: list[ChildProcess] = []
    try:
        for i in range(k):
            webhook_process(dispatchers, logs, f"dispatcher-{k}-{i}", database_url, dispatcher=True)
        started_cpu = sum(cpu_seconds(d.pid) for d in dispatchers)  # start-up, not delivery

        def delivered() -> bool:
            return bool(httpx.get(f"{receiver}/stats").json()["unique"] >= expected)

        wait_until(delivered, args.timeout, interval=0.2)
        time.sleep(1.0)  # late duplicates, if any, would arrive now
        stats = httpx.get(f"{receiver}/stats").json()
        cpu = sum(cpu_seconds(d.pid) for d in dispatchers) - started_cpu
    finally:
        stop_all(dispatchers)
    span = max(stats["last"] - stats["first"], 1e-9)
    return {
        "dispatchers": k,
        "deliveries": expected,
        "delivered": stats["unique"],
        "duplicates": stats["duplicates"],
        "seconds": round(span, 2),
        "per_second": round(stats["unique"] / span, 1),
        # Load-independent: deliveries per second of dispatcher CPU (after start-up).
        "per_cpu_second": round(stats["unique"] / cpu, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--dispatchers", default="1,2")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--quick", action="store_true", help="5,000 deliveries")
    args = parser.parse_args()
    if args.quick:
        args.deliveries = 5_000
    logs = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    server = start_postgres()
    port = free_port()
    receiver = ChildProcess(
        "receiver",
        [sys.executable, str(ROOT / "bench" / "webhook_receiver.py"), str(port)],
        logs / "receiver.log",
    ).start()
    results = []
    try:
        receiver.wait_ready(f"http://127.0.0.1:{port}/stats", 30)
        for k in (int(x) for x in args.dispatchers.split(",")):
            result = run(server, logs, f"http://127.0.0.1:{port}", args, k)
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        receiver.stop()
        server.stop("immediate")
    print("\n| dispatchers | deliveries | delivered | duplicates | seconds | deliveries/s "
          "| per CPU-second |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for r in results:
        print(f"| {r['dispatchers']} | {r['deliveries']} | {r['delivered']} | "
              f"{r['duplicates']} | {r['seconds']} | {r['per_second']} "
              f"| {r['per_cpu_second']} |")  # fmt: skip
    out = results_dir / f"webhook-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}\nlogs: {logs}")


if __name__ == "__main__":
    main()
