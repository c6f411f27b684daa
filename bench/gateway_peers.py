"""Peer proxies for the gateway benchmark: their venvs, and how each target is launched.

A launcher gets the run's context, a free port and the stub's URL, and says how to start
the proxy (argv, env) and which key clients must send. Our gateway's settings for the run
are ``GATEWAY_ENV`` below.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_baseline import Baseline
from gateway_common import BENCH, MODEL, REPO, child_env, log

from switchyard_cli.processes import free_port

PEERS_VENV = BENCH / ".peers-venv"
PEERS_LOCK = BENCH / "peers" / "requirements.txt"
PSTACK_VENV = BENCH / ".pstack-venv"
PEERS = ("litellm", "vllm-router", "pstack")

# ---------------------------------------------------------------------------------------
# Our gateway's settings for the benchmark, merged over the base env (port, the stub as a
# static worker, the API key digest). This is the one place to turn features on: add rate
# limits, metrics, breakers and so on here as they land ("all features on"), with limits
# high enough that the benchmark itself never trips them. `--gateway-env KEY=VALUE` adds
# more from the command line. A `--baseline-ref` gateway runs with the same settings.
GATEWAY_ENV: dict[str, str] = {
    "SWITCHYARD_GATEWAY_LOG_LEVEL": "WARNING",  # peers run with reduced logging too
    "SWITCHYARD_GATEWAY_SHUTDOWN_GRACE_SECONDS": "2",
    # All features on: per-key rate limits (high enough not to trip), breakers per instance
    # (always on), metrics (always on), least-loaded routing (the default).
    "SWITCHYARD_GATEWAY_DEFAULT_RPM": "100000000",
    "SWITCHYARD_GATEWAY_DEFAULT_TPM": "1000000000",
}
# ---------------------------------------------------------------------------------------


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


def prepare_peers(ctx: Ctx, report: dict[str, Any]) -> None:
    """Build the venvs the chosen targets need; a target that cannot have one is skipped."""
    args = ctx.args
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


# --- targets ---------------------------------------------------------------------------


@dataclass
class Ctx:
    args: argparse.Namespace
    logs: Path
    api_key: str
    peers_python: Path | None = None
    pstack_python: Path | None = None
    litellm_key: str = field(default_factory=lambda: "sk-bench-" + secrets.token_hex(12))
    baseline: Baseline | None = None  # --baseline-ref: an older gateway in a git worktree


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


def launch_baseline(ctx: Ctx, port: int, stub_url: str) -> Launch:
    """The gateway of ``--baseline-ref``: same venv and settings, its code from the worktree."""
    assert ctx.baseline is not None
    launch = launch_gateway(ctx, port, stub_url)
    launch.env.update(ctx.baseline.env())
    return launch


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


def launcher(name: str) -> Callable[[Ctx, int, str], Launch]:
    """The launcher of a target; ``gateway@<ref>`` is the baseline gateway."""
    return launch_baseline if name.startswith("gateway@") else LAUNCHERS[name]
