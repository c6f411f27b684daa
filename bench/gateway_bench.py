"""Gateway throughput and latency, side by side with peer proxies, in one run.

Targets (each in front of the same stub upstream, bench/stub_upstream.py):

1. ``stub``         the stub alone (the ceiling);
2. ``gateway``      our gateway, one process, auth on, plus ``GATEWAY_ENV`` below;
3. ``litellm``      LiteLLM proxy, one worker, master key on, offline cost map;
4. ``vllm-router``  the Rust vllm-router (PyPI ``vllm-router``), round robin;
5. ``pstack``       the vLLM production-stack Python router, only with ``PSTACK_SRC`` set.

Each target runs under wrk (bench/wrk/chat.lua, same body) at every concurrency, then a
streaming pass (bench/gateway_stream_client.py) measures time to first chunk and full
stream time. Peers live in their own venv (bench/.peers-venv), made here with uv.

Run: ``uv run --no-sync python bench/gateway_bench.py [--quick] [--duration S]
[--concurrency 8,32,64] [--targets stub,gateway,...]``. Results: a table on stdout, JSON in
bench/results/gateway-<timestamp>.json, process logs beside it. The bar (PASS/FAIL lines)
never changes the exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
PEERS_VENV = BENCH / ".peers-venv"
PEERS_LOCK = BENCH / "peers" / "requirements.txt"
PSTACK_VENV = BENCH / ".pstack-venv"
WRK_SCRIPT = BENCH / "wrk" / "chat.lua"
STREAM_CLIENT = BENCH / "gateway_stream_client.py"
STUB = BENCH / "stub_upstream.py"
MODEL = "bench-model"
BODY = {
    "model": MODEL,
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "What color is the sky?"}],
}
ALL_TARGETS = ("stub", "gateway", "litellm", "vllm-router", "pstack")
PEERS = ("litellm", "vllm-router", "pstack")

# ---------------------------------------------------------------------------------------
# Our gateway's settings for the benchmark, merged over the base env (port, the stub as a
# static worker, the API key digest). This is the one place to turn features on: add rate
# limits, metrics, breakers and so on here as they land ("all features on"), with limits
# high enough that the benchmark itself never trips them. `--gateway-env KEY=VALUE` adds
# more from the command line.
GATEWAY_ENV: dict[str, str] = {
    "SWITCHYARD_GATEWAY_LOG_LEVEL": "WARNING",  # peers run with reduced logging too
    "SWITCHYARD_GATEWAY_SHUTDOWN_GRACE_SECONDS": "2",
    # All features on: per-key rate limits (high enough not to trip), breakers per instance
    # (always on), metrics (always on), least-loaded routing (the default).
    "SWITCHYARD_GATEWAY_DEFAULT_RPM": "100000000",
    "SWITCHYARD_GATEWAY_DEFAULT_TPM": "1000000000",
}
# ---------------------------------------------------------------------------------------

# The bar for our gateway against the peers, checked at every concurrency.
BAR_LITELLM_RPS_RATIO = 10.0  # at least 10x LiteLLM's req/s
BAR_VLLM_ROUTER_RPS_RATIO = 0.2  # at least 20% of vllm-router's req/s
BAR_VLLM_ROUTER_P99_RATIO = 2.0  # p99 at most 2x vllm-router's
BAR_MAX_ERROR_RATE = 0.001  # a run with more errors than this does not count


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


# --- tools and venvs -------------------------------------------------------------------


def ensure_wrk() -> str:
    """Path to wrk; installs Debian's package with apt-get when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise SystemExit("wrk is not installed; install it (Debian/Ubuntu: apt-get install wrk)")
    log("installing wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run([apt, "update"], env=env, stdout=subprocess.DEVNULL, check=False)
        subprocess.run(install, env=env, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install wrk")
    return found


def _uv() -> str:
    found = shutil.which("uv")
    if not found:
        raise RuntimeError("uv is not on PATH (needed to build the peers venv)")
    return found


def ensure_venv(venv: Path, install_args: list[str], key: str, verb: str = "install") -> Path:
    """Create ``venv`` with uv and install into it unless it already matches ``key``.

    uv's cache makes a rebuild cheap; the stamp file makes a repeat run skip it entirely.
    uv writes a ``.gitignore`` into each venv, so it never shows up in git status.
    """
    python = venv / "bin" / "python"
    stamp = venv / ".bench-stamp"
    if python.exists() and stamp.exists() and stamp.read_text() == key:
        return python
    uv = _uv()
    if not python.exists():
        log(f"creating {venv.relative_to(REPO)}")
        subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
    log(f"installing into {venv.relative_to(REPO)} (uv cache makes repeats fast)")
    subprocess.run([uv, "pip", verb, "--quiet", "--python", str(python), *install_args], check=True)
    stamp.write_text(key)
    return python


def ensure_peers_venv() -> Path:
    key = hashlib.sha256(PEERS_LOCK.read_bytes()).hexdigest()
    return ensure_venv(PEERS_VENV, [str(PEERS_LOCK)], key, verb="sync")


def ensure_pstack_venv(src: Path) -> Path:
    """The production-stack router, installed from a checkout into its own venv (its
    ``vllm_router`` package would clash with the Rust router's)."""
    head = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    key = f"{src.resolve()}@{head or 'no-git'}"
    os.environ.setdefault("SETUPTOOLS_SCM_PRETEND_VERSION", "0.0.0")  # checkouts without tags
    return ensure_venv(PSTACK_VENV, [str(src)], key)


def venv_version(python: Path, dist: str) -> str | None:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


# --- processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The harness env without proxy settings (everything here is loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cpus: str | None = None
    cwd: Path = REPO
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        argv = ["taskset", "-c", self.cpus, *self.argv] if self.cpus else self.argv
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches children
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the process group, then SIGKILL after ``grace`` seconds."""
        if self.popen is None or self.popen.poll() is not None:
            return
        pgid = self.popen.pid  # session leader: its pid is the group id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log(f"{self.name} ignored SIGTERM for {grace:.0f}s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        # Stray children that outlived the leader.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def wait_ready(proc: Proc, check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            return False
        if check():
            return True
        time.sleep(0.25)
    return False


def chat(base: str, api_key: str | None) -> int:
    """One chat request; its status, or 0 for no answer or a 200 without choices."""
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    status, data = http("POST", f"{base}/v1/chat/completions", json.dumps(BODY).encode(), headers)
    return 0 if status == 200 and b'"choices"' not in data else status


def chat_ok(base: str, api_key: str | None) -> Callable[[], bool]:
    return lambda: chat(base, api_key) == 200


# --- targets ---------------------------------------------------------------------------


@dataclass
class Ctx:
    args: argparse.Namespace
    logs: Path
    api_key: str
    peers_python: Path | None = None
    pstack_python: Path | None = None
    litellm_key: str = field(default_factory=lambda: "sk-bench-" + secrets.token_hex(12))


@dataclass
class Launch:
    """How to start a proxy in front of the stub, and the key clients must send."""

    argv: list[str]
    env: dict[str, str]
    api_key: str | None
    auth: str  # what auth the target enforces, for the report
    startup_timeout: float = 60.0


def launch_gateway(ctx: Ctx, port: int, stub_url: str) -> Launch:
    digest = hashlib.sha256(ctx.api_key.encode()).hexdigest()
    env = {
        "SWITCHYARD_GATEWAY_HOST": "127.0.0.1",
        "SWITCHYARD_GATEWAY_PORT": str(port),
        "SWITCHYARD_GATEWAY_STATIC_WORKERS": json.dumps([{"url": stub_url, "models": [MODEL]}]),
        "SWITCHYARD_GATEWAY_API_KEY_HASHES": json.dumps([digest]),
        **gateway_env(ctx.args),
    }
    return Launch(
        [sys.executable, "-m", "switchyard_gateway"],
        child_env(env),
        ctx.api_key,
        "API key (SHA-256 digest)",
    )


def gateway_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(GATEWAY_ENV)
    for item in args.gateway_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--gateway-env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def launch_litellm(ctx: Ctx, port: int, stub_url: str) -> Launch:
    assert ctx.peers_python is not None
    config = ctx.logs / "litellm-config.yaml"
    # JSON is YAML: no YAML library needed here.
    config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": f"openai/{MODEL}",
                            "api_base": f"{stub_url}/v1",
                            "api_key": "sk-stub",
                        },
                    }
                ],
                "litellm_settings": {
                    "telemetry": False,
                    "turn_off_message_logging": True,
                    "drop_params": True,
                    "set_verbose": False,
                },
                "general_settings": {
                    "master_key": ctx.litellm_key,
                    "disable_spend_logs": True,
                },
            },
            indent=2,
        )
    )
    env = child_env(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the cost map at start
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_SCHEMA_UPDATE": "True",
        }
    )
    for var in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "OPENAI_API_KEY"):
        env.pop(var, None)
    litellm = ctx.peers_python.parent / "litellm"
    argv = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1", "--telemetry", "False"]
    return Launch(argv, env, ctx.litellm_key, "master key", startup_timeout=180.0)


def launch_vllm_router(ctx: Ctx, port: int, stub_url: str) -> Launch:
    assert ctx.peers_python is not None
    router = ctx.peers_python.parent / "vllm-router"
    argv = [str(router), "--host", "127.0.0.1", "--port", str(port), "--worker-urls", stub_url]
    argv += ["--policy", "round_robin", "--log-level", "warning"]
    argv += ["--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())]
    # No inbound static key: its only client auth calls out to a validation URL.
    return Launch(argv, child_env(), None, "none (no static-key option)")


def launch_pstack(ctx: Ctx, port: int, stub_url: str) -> Launch:
    assert ctx.pstack_python is not None
    router = ctx.pstack_python.parent / "vllm-router"  # console script: vllm_router.app:main
    argv = [str(router), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--service-discovery", "static"]
    argv += ["--static-backends", stub_url, "--static-models", MODEL]
    argv += ["--routing-logic", "roundrobin", "--log-level", "warning"]
    return Launch(argv, child_env(), None, "none", startup_timeout=120.0)


LAUNCHERS: dict[str, Callable[[Ctx, int, str], Launch]] = {
    "gateway": launch_gateway,
    "litellm": launch_litellm,
    "vllm-router": launch_vllm_router,
    "pstack": launch_pstack,
}


# --- measuring -------------------------------------------------------------------------


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


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def bench_target(ctx: Ctx, name: str, report: dict[str, Any]) -> None:
    args = ctx.args
    stub_port = free_port()
    stub_url = f"http://127.0.0.1:{stub_port}"
    stub_argv = [sys.executable, str(STUB), "--port", str(stub_port), "--model", MODEL]
    stub_argv += ["--chunks", str(args.chunks), "--chunk-delay-ms", f"{args.chunk_delay_ms:g}"]
    # The stub alone is the system under test; behind a proxy it sits with the load.
    stub_cpus = args.sut_cpus if name == "stub" else args.load_cpus
    stub = Proc(f"{name}-stub", stub_argv, child_env(), ctx.logs / f"{name}-stub.log", stub_cpus)
    info: dict[str, Any] = {"target": name}
    report["targets"][name] = info
    with running(stub):
        if not wait_ready(stub, lambda: http("GET", f"{stub_url}/readyz")[0] == 200, 15):
            raise RuntimeError(f"stub did not start:\n{stub.tail()}")
        if name == "stub":
            info["auth"] = "none"
            bench_runs(ctx, name, stub_url, None, report, stub)
            return
        port = free_port()
        launch = LAUNCHERS[name](ctx, port, stub_url)
        info["auth"] = launch.auth
        proc = Proc(name, launch.argv, launch.env, ctx.logs / f"{name}.log", args.sut_cpus)
        base = f"http://127.0.0.1:{port}"
        log(f"{name}: starting on {base}")
        started = time.monotonic()
        with running(proc):
            if not wait_ready(proc, chat_ok(base, launch.api_key), launch.startup_timeout):
                raise RuntimeError(f"{name} never answered a chat request:\n{proc.tail()}")
            info["startup_s"] = round(time.monotonic() - started, 1)
            log(f"{name}: ready in {info['startup_s']}s")
            bench_runs(ctx, name, base, launch.api_key, report, proc)
            if not proc.alive():
                raise RuntimeError(f"{name} died during the run:\n{proc.tail()}")


def settle(name: str, proc: Proc, base: str, api_key: str | None) -> dict[str, Any]:
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
    ctx: Ctx, name: str, base: str, api_key: str | None, report: dict[str, Any], proc: Proc
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


# --- report ----------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_tables(report: dict[str, Any]) -> None:
    runs = report["runs"]
    print()
    print("Throughput and latency (non-streaming; wrk, same body, keep-alive)")
    header = f"{'target':<12} {'conc':>5} {'req/s':>11} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}"
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r['target']:<12} {r['concurrency']:>5} {_fmt(r['rps'], 1):>11}"
            f" {_fmt(r['p50_ms']):>9} {_fmt(r['p99_ms']):>9} {r['errors']:>7}"
        )
    if report["ratios"]:
        print()
        print("Our gateway relative to each peer (req/s ratio: higher is better;")
        print("p99 ratio: lower is better)")
        header = f"{'peer':<12} {'conc':>5} {'gw/peer req/s':>14} {'gw/peer p99':>12}"
        print(header)
        print("-" * len(header))
        for r in report["ratios"]:
            print(
                f"{r['peer']:<12} {r['concurrency']:>5} {_fmt(r['rps_ratio']):>13}x"
                f" {_fmt(r['p99_ratio']):>11}x"
            )
    if report["stream"]:
        print()
        print("Streaming (full stream and time to first data: chunk)")
        header = (
            f"{'target':<12} {'conc':>5} {'streams/s':>10} {'ttfb p50':>9} {'ttfb p99':>9}"
            f" {'full p50':>9} {'full p99':>9} {'chunks':>7} {'errors':>7}"
        )
        print(header)
        print("-" * len(header))
        for s in report["stream"]:
            print(
                f"{s['target']:<12} {s['concurrency']:>5} {_fmt(s['streams_per_s'], 1):>10}"
                f" {_fmt(s['ttfb_ms']['p50']):>9} {_fmt(s['ttfb_ms']['p99']):>9}"
                f" {_fmt(s['total_ms']['p50']):>9} {_fmt(s['total_ms']['p99']):>9}"
                f" {_fmt(s['chunks_per_stream'], 1):>7} {s['errors']:>7}"
            )
    for name, reason in report["skipped"].items():
        print(f"SKIPPED {name}: {reason}")
    refusals: dict[str, list[dict[str, Any]]] = {}
    for r in [*runs, *report["stream"]]:
        if r.get("refused_before"):
            refusals.setdefault(r["target"], []).append(r)
    for name, hits in refusals.items():
        worst = max(h["settle_s"] for h in hits)
        statuses = sorted({s for h in hits for s in h["refused_before"]})
        print(
            f"NOTE {name}: after {len(hits)} of its runs ended (wrk drops its connections"
            f" with requests in flight) it did not answer 200 ({'; '.join(statuses)})"
            f" for up to {worst:.1f}s"
        )


def compute_ratios(report: dict[str, Any]) -> None:
    by = {(r["target"], r["concurrency"]): r for r in report["runs"]}
    for peer in PEERS:
        for conc in report["config"]["concurrency"]:
            gw, other = by.get(("gateway", conc)), by.get((peer, conc))
            if not gw or not other:
                continue
            report["ratios"].append(
                {
                    "peer": peer,
                    "concurrency": conc,
                    "rps_ratio": gw["rps"] / other["rps"] if other["rps"] else None,
                    "p99_ratio": gw["p99_ms"] / other["p99_ms"] if other["p99_ms"] else None,
                }
            )


# (peer, metric, comparison, threshold): gateway/peer ratio of the metric must hold.
BAR_RULES: list[tuple[str, str, str, float]] = [
    ("litellm", "rps", ">=", BAR_LITELLM_RPS_RATIO),
    ("vllm-router", "rps", ">=", BAR_VLLM_ROUTER_RPS_RATIO),
    ("vllm-router", "p99_ms", "<=", BAR_VLLM_ROUTER_P99_RATIO),
]


def _clean(run: dict[str, Any]) -> bool:
    return bool(run["errors"] <= BAR_MAX_ERROR_RATE * max(run["requests"], 1))


def check_bar(report: dict[str, Any]) -> None:
    """PASS/FAIL/SKIP lines for the bar, one per rule and concurrency (never fatal)."""
    by = {(r["target"], r["concurrency"]): r for r in report["runs"]}
    lines = report["bar"]
    for conc in report["config"]["concurrency"]:
        gw = by.get(("gateway", conc))
        for peer, metric, op, threshold in BAR_RULES:
            label = "req/s" if metric == "rps" else "p99"
            rule = f"gateway {label} {op} {threshold:g}x {peer}"
            other = by.get((peer, conc))
            ratio = None
            if gw is None or other is None:
                verdict, detail = "SKIP", "not measured"
            elif not _clean(gw) or not _clean(other):
                verdict, detail = "FAIL", "a run had errors (see the table)"
            elif not other[metric]:
                verdict, detail = "SKIP", f"{peer} {label} is zero"
            else:
                ratio = gw[metric] / other[metric]
                ok = ratio >= threshold if op == ">=" else ratio <= threshold
                verdict = "PASS" if ok else "FAIL"
                unit = "req/s" if metric == "rps" else "ms"
                detail = f"{gw[metric]:,.1f} vs {other[metric]:,.1f} {unit}: {ratio:.2f}x"
            lines.append(
                {
                    "verdict": verdict,
                    "concurrency": conc,
                    "rule": rule,
                    "ratio": ratio,
                    "detail": detail,
                }
            )
    print()
    print("The bar (informational; never changes the exit status)")
    for line in lines:
        print(f"{line['verdict']} c={line['concurrency']}: {line['rule']} ({line['detail']})")


# --- main ------------------------------------------------------------------------------


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
        help="extra env for our gateway, over GATEWAY_ENV in this file (repeatable)",
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. from make or CI) unwinds like Ctrl-C, so every started process is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.wrk = ensure_wrk()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = RESULTS / f"gateway-{stamp}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(args=args, logs=logs, api_key="sk-bench-" + secrets.token_hex(16))
    report: dict[str, Any] = {
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
        "targets": {},
        "runs": [],
        "stream": [],
        "ratios": [],
        "bar": [],
        "skipped": {},
        "failed": {},
    }
    log(f"logs in {logs.relative_to(REPO)}; pinning: SUT={args.sut_cpus} load={args.load_cpus}")

    peer_targets = [t for t in args.targets if t in ("litellm", "vllm-router")]
    if peer_targets or args.stream:
        try:
            ctx.peers_python = ensure_peers_venv()
            for dist in ("litellm", "vllm-router", "aiohttp"):
                report["versions"][dist] = venv_version(ctx.peers_python, dist)
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            reason = f"could not build the peers venv: {exc}"
            for name in peer_targets:
                report["skipped"][name] = reason
            if args.stream:
                report["skipped"]["streaming"] = reason
    if "pstack" in args.targets:
        src = os.environ.get("PSTACK_SRC")
        if not src:
            report["skipped"]["pstack"] = (
                "PSTACK_SRC is not set (path to a vllm-project/production-stack checkout); "
                "it is not on PyPI: the PyPI 'vllm-router' is the Rust router"
            )
        elif not Path(src, "src", "vllm_router").is_dir():
            report["skipped"]["pstack"] = f"PSTACK_SRC={src} has no src/vllm_router"
        else:
            try:
                ctx.pstack_python = ensure_pstack_venv(Path(src))
            except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
                report["skipped"]["pstack"] = f"could not install {src}: {exc}"
    for name, reason in report["skipped"].items():
        log(f"skipping {name}: {reason}")

    for name in args.targets:
        if name in report["skipped"]:
            continue
        log(f"=== {name}")
        try:
            bench_target(ctx, name, report)
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as exc:
            report["failed"][name] = str(exc)
            log(f"{name} FAILED: {exc}")

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
