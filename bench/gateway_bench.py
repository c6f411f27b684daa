"""Gateway throughput and latency, side by side with peer proxies, in one run.

Targets (each in front of the same stub upstream, bench/stub_upstream.py):

1. ``stub``         the stub alone (the ceiling);
2. ``gateway``      our gateway, one process, auth on, plus ``GATEWAY_ENV`` (gateway_peers.py);
3. ``litellm``      LiteLLM proxy, one worker, master key on, offline cost map;
4. ``vllm-router``  the Rust vllm-router (PyPI ``vllm-router``), round robin;
5. ``pstack``       the vLLM production-stack Python router, only with ``PSTACK_SRC`` set.

Each target runs under wrk (bench/wrk/chat.lua, same body) at every concurrency, then a
streaming pass (bench/gateway_stream_client.py) measures time to first chunk and full
stream time. Peers live in their own venv (bench/.peers-venv), made here with uv.

``--baseline-ref REF`` adds ``gateway@REF``: the gateway of that git ref, from a temporary
worktree, in the same run, so old and new are compared side by side with ratios.

Run: ``uv run --no-sync python bench/gateway_bench.py [--quick] [--duration S]
[--concurrency 8,32,64] [--targets stub,gateway,...] [--baseline-ref REF]``. Results: a
table on stdout, JSON in bench/results/gateway-<timestamp>.json, process logs beside it.
The bar (PASS/FAIL lines) never changes the exit status.

This file is the command line; the parts: gateway_peers.py (venvs, how each target is
launched, ``GATEWAY_ENV``), gateway_baseline.py (the ``--baseline-ref`` worktree),
gateway_load.py (wrk and streaming runs), gateway_report.py (tables, ratios, the bar).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_baseline import baseline_worktree
from gateway_common import BODY, REPO, RESULTS, log
from gateway_load import bench_target
from gateway_peers import Ctx, ensure_wrk, gateway_env, prepare_peers
from gateway_report import check_bar, compute_ratios, print_tables

ALL_TARGETS = ("stub", "gateway", "litellm", "vllm-router", "pstack")


def _csv_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description="Gateway throughput/latency against peer proxies (see bench/README.md)."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=env("BENCH_QUICK", "") not in ("", "0"),
        help="short runs for a smoke check (3 s each, 1 s warm-up, 300 streams); $BENCH_QUICK",
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds per target")
    parser.add_argument(
        "--concurrency",
        type=_csv_ints,
        default=_csv_ints(env("BENCH_CONCURRENCY", "8,32,64")),
        help="comma-separated connection counts (default 8,32,64); $BENCH_CONCURRENCY",
    )
    parser.add_argument(
        "--targets",
        default=env("BENCH_TARGETS", ",".join(ALL_TARGETS)),
        help=f"comma-separated subset of {','.join(ALL_TARGETS)}; $BENCH_TARGETS",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--timeout", type=float, default=10.0, help="wrk request timeout, s")
    parser.add_argument("--no-stream", dest="stream", action="store_false", help="skip streaming")
    parser.add_argument("--stream-concurrency", type=int, default=32)
    parser.add_argument("--stream-requests", type=int, default=None, help="timed streams")
    parser.add_argument(
        "--stream-seconds", type=float, default=None, help="cap on each streaming pass"
    )
    parser.add_argument("--chunks", type=int, default=16, help="SSE chunks per stream")
    parser.add_argument(
        "--chunk-delay-ms",
        type=float,
        default=2.0,
        help="stub delay between SSE events (default 2: the first chunk comes at once, the "
        "stream takes ~32 ms, so a proxy that buffers shows in time to first chunk)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin processes to CPUs (default: system under test on CPU 0; load "
        "generator and stub behind proxies on the other CPUs)",
    )
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra env for our gateway, over GATEWAY_ENV in bench/gateway_peers.py "
        "(repeatable; the baseline gets it too)",
    )
    parser.add_argument(
        "--baseline-ref",
        default=env("BENCH_BASELINE_REF") or None,
        metavar="GIT_REF",
        help="also run the gateway of this git ref (target gateway@REF, from a temporary "
        "worktree, same venv) and print our gateway's ratios to it; $BENCH_BASELINE_REF",
    )
    args = parser.parse_args(argv)
    duration = env("BENCH_DURATION")
    if args.duration is None:
        args.duration = float(duration) if duration else (3.0 if args.quick else 10.0)
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 2.0
    if args.stream_requests is None:
        args.stream_requests = 300 if args.quick else 2000
    if args.stream_seconds is None:
        args.stream_seconds = 15.0 if args.quick else 60.0
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - set(ALL_TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    args.targets = [t for t in ALL_TARGETS if t in targets]
    if args.baseline_ref:  # compared with our gateway: runs right after it
        at = args.targets.index("gateway") + 1 if "gateway" in args.targets else 0
        args.targets.insert(at, f"gateway@{args.baseline_ref}")
    if not args.concurrency:
        parser.error("--concurrency needs at least one value")
    args.sut_cpus = args.load_cpus = None
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin and len(cpus) >= 2 and shutil.which("taskset"):
        args.sut_cpus = str(cpus[0])
        args.load_cpus = ",".join(str(c) for c in cpus[1:])
    return args


def git_describe() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def new_report(args: argparse.Namespace, stamp: str) -> dict[str, Any]:
    return {
        "timestamp": stamp,
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "wrk_threads": args.threads,
            "targets": args.targets,
            "pinning": {"system_under_test": args.sut_cpus, "load_and_stub": args.load_cpus},
            "stream": {
                "enabled": args.stream,
                "concurrency": args.stream_concurrency,
                "requests": args.stream_requests,
                "chunks": args.chunks,
                "chunk_delay_ms": args.chunk_delay_ms,
            },
            "gateway_env": gateway_env(args),
            "body": BODY,
        },
        "host": {"cpus": os.cpu_count(), "git": git_describe(), "python": sys.version.split()[0]},
        "versions": {},
        "baseline": None,
        "targets": {},
        "runs": [],
        "stream": [],
        "ratios": [],
        "bar": [],
        "skipped": {},
        "failed": {},
    }


def run_targets(ctx: Ctx, report: dict[str, Any]) -> None:
    for name in ctx.args.targets:
        if name in report["skipped"]:
            continue
        log(f"=== {name}")
        try:
            bench_target(ctx, name, report)
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as exc:
            report["failed"][name] = str(exc)
            log(f"{name} FAILED: {exc}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from make or CI) unwinds like Ctrl-C, so every started process is stopped
    # (and the baseline's worktree removed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.wrk = ensure_wrk()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = RESULTS / f"gateway-{stamp}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(args=args, logs=logs, api_key="sk-bench-" + secrets.token_hex(16))
    report = new_report(args, stamp)
    log(f"logs in {logs.relative_to(REPO)}; pinning: SUT={args.sut_cpus} load={args.load_cpus}")
    prepare_peers(ctx, report)
    with contextlib.ExitStack() as stack:
        if args.baseline_ref:
            ctx.baseline = stack.enter_context(baseline_worktree(args.baseline_ref))
            report["baseline"] = {"ref": args.baseline_ref, **ctx.baseline.check()}
            log(f"{ctx.baseline.target}: imports from {report['baseline']['switchyard_gateway']}")
        run_targets(ctx, report)

    compute_ratios(report)
    print_tables(report)
    for name, error in report["failed"].items():
        print(f"FAILED {name}: {error.splitlines()[0] if error else ''}")
    check_bar(report)
    out = RESULTS / f"gateway-{stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(f"results: {out.relative_to(REPO)}  (process logs: {logs.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
