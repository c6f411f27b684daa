"""Load runs of the gateway benchmark: a stub upstream and a target per run, wrk at each
concurrency, then a streaming pass; each run only once the target answers 200 again."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from gateway_common import BENCH, BODY, MODEL, chat, chat_ok, child_env, http, log
from gateway_peers import Ctx, launcher

from switchyard_cli.processes import ChildProcess, NotReady, free_port

WRK_SCRIPT = BENCH / "wrk" / "chat.lua"
STREAM_CLIENT = BENCH / "gateway_stream_client.py"
STUB = BENCH / "stub_upstream.py"


def run_wrk(
    ctx: Ctx, url: str, api_key: str | None, concurrency: int, duration: float
) -> dict[str, Any]:
    args = ctx.args
    threads = min(args.threads, concurrency)
    argv = [args.wrk, f"-t{threads}", f"-c{concurrency}", f"-d{duration:g}s"]
    argv += ["--timeout", f"{args.timeout:g}s", "-s", str(WRK_SCRIPT), url]
    if args.load_cpus:
        argv = ["taskset", "-c", args.load_cpus, *argv]
    env = child_env({"BENCH_BODY": json.dumps(BODY), "BENCH_API_KEY": api_key or ""})
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration + args.timeout + 30
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            raw = json.loads(line[len("BENCH_JSON ") :])
            break
    else:
        raise RuntimeError(f"wrk printed no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    errors = raw["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "concurrency": concurrency,
        "duration_s": round(seconds, 3),
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "max_ms": lat["max"] / 1000,
        "errors": errors["status"] + socket_errors,
        "non_2xx": errors["status"],
        "socket_errors": socket_errors,
        "error_detail": errors,
    }


def run_stream(ctx: Ctx, url: str, api_key: str | None) -> dict[str, Any]:
    args = ctx.args
    assert ctx.peers_python is not None
    argv = [str(ctx.peers_python), str(STREAM_CLIENT), "--url", url, "--model", MODEL]
    argv += ["--requests", str(args.stream_requests)]
    argv += ["--concurrency", str(args.stream_concurrency)]
    argv += ["--warmup", str(args.stream_concurrency), "--max-seconds", str(args.stream_seconds)]
    if api_key:
        argv += ["--api-key", api_key]
    if args.load_cpus:
        argv = ["taskset", "-c", args.load_cpus, *argv]
    out = subprocess.run(
        argv, env=child_env(), capture_output=True, text=True, timeout=args.stream_seconds + 120
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_STREAM_JSON "):
            result: dict[str, Any] = json.loads(line[len("BENCH_STREAM_JSON ") :])
            return result
    raise RuntimeError(f"stream client failed: {out.stderr[-800:]}")


def process(
    ctx: Ctx, name: str, argv: list[str], env: dict[str, str], cpus: str | None
) -> ChildProcess:
    """A benchmark process: logs in the run's folder, pinned to ``cpus``."""
    log_path = ctx.logs / f"{name}.log"
    return ChildProcess(name, argv, log_path, base_env=env, cwd=BENCH.parent, cpus=cpus)


@contextlib.contextmanager
def running(proc: ChildProcess) -> Iterator[ChildProcess]:
    """Started for the block; then SIGTERM to its group, SIGKILL after 10 s."""
    proc.start()
    try:
        yield proc
    finally:
        if proc.alive() and proc.stop(grace=10) == -9:
            log(f"{proc.name} ignored SIGTERM for 10s: SIGKILL")


def bench_target(ctx: Ctx, name: str, report: dict[str, Any]) -> None:
    args = ctx.args
    stub_port = free_port()
    stub_url = f"http://127.0.0.1:{stub_port}"
    stub_argv = [sys.executable, str(STUB), "--port", str(stub_port), "--model", MODEL]
    stub_argv += ["--chunks", str(args.chunks), "--chunk-delay-ms", f"{args.chunk_delay_ms:g}"]
    # The stub alone is the system under test; behind a proxy it sits with the load.
    stub_cpus = args.sut_cpus if name == "stub" else args.load_cpus
    stub = process(ctx, f"{name}-stub", stub_argv, child_env(), stub_cpus)
    info: dict[str, Any] = {"target": name}
    report["targets"][name] = info
    with running(stub):
        stub.wait_ready(lambda: http("GET", f"{stub_url}/readyz")[0] == 200, 15, interval=0.25)
        if name == "stub":
            info["auth"] = "none"
            bench_runs(ctx, name, stub_url, None, report, stub)
            return
        port = free_port()
        launch = launcher(name)(ctx, port, stub_url)
        info["auth"] = launch.auth
        proc = process(ctx, name, launch.argv, launch.env, args.sut_cpus)
        base = f"http://127.0.0.1:{port}"
        log(f"{name}: starting on {base}")
        started = time.monotonic()
        with running(proc):
            try:
                proc.wait_ready(
                    chat_ok(base, launch.api_key), launch.startup_timeout, interval=0.25
                )
            except NotReady as exc:
                raise RuntimeError(f"{name} never answered a chat request: {exc}") from None
            info["startup_s"] = round(time.monotonic() - started, 1)
            log(f"{name}: ready in {info['startup_s']}s")
            bench_runs(ctx, name, base, launch.api_key, report, proc)
            if not proc.alive():
                raise RuntimeError(f"{name} died during the run:\n{proc.tail()}")


def settle(name: str, proc: ChildProcess, base: str, api_key: str | None) -> dict[str, Any]:
    """Wait until the target answers a chat request with 200 again.

    Every wrk run ends by dropping its connections with requests in flight. A target that
    then refuses requests for a while (say, a breaker that counted the disconnects as
    failures) must not charge that to the next run, but it is reported: ``refused_before``
    counts the answers that were not 200 by status (or "no answer in 5 s"), ``settle_s`` is
    how long it took to get a 200.
    """
    started = time.monotonic()
    refused: dict[str, int] = {}
    while (status := chat(base, api_key)) != 200:
        label = str(status) if status else "no answer in 5 s"
        refused[label] = refused.get(label, 0) + 1
        if not proc.alive() or time.monotonic() - started > 30:
            raise RuntimeError(f"{name} stopped answering chat requests:\n{proc.tail()}")
        time.sleep(0.25)
    waited = round(time.monotonic() - started, 2)
    if refused:
        log(f"{name}: no 200 for {waited:.1f}s after the previous run: {refused}")
    return {"settle_s": waited, "refused_before": refused}


def bench_runs(
    ctx: Ctx, name: str, base: str, api_key: str | None, report: dict[str, Any], proc: ChildProcess
) -> None:
    args = ctx.args
    url = f"{base}/v1/chat/completions"
    if args.warmup > 0:
        run_wrk(ctx, url, api_key, max(args.concurrency), args.warmup)
    for conc in args.concurrency:
        settled = settle(name, proc, base, api_key)
        result = run_wrk(ctx, url, api_key, conc, args.duration)
        report["runs"].append({"target": name, **result, **settled})
        log(
            f"{name:12} c={conc:<3} {result['rps']:>9.1f} req/s  p50 {result['p50_ms']:7.2f} ms"
            f"  p99 {result['p99_ms']:7.2f} ms  errors {result['errors']}"
        )
    if args.stream and ctx.peers_python is not None:
        settled = settle(name, proc, base, api_key)
        result = run_stream(ctx, url, api_key)
        report["stream"].append({"target": name, **result, **settled})
        log(
            f"{name:12} stream c={result['concurrency']}: ttfb p50 {result['ttfb_ms']['p50']} ms"
            f" p99 {result['ttfb_ms']['p99']} ms, full p50 {result['total_ms']['p50']} ms"
            f" p99 {result['total_ms']['p99']} ms, errors {result['errors']}"
        )
