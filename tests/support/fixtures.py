"""Session-wide fixtures: a real model-worker, and the whole platform via ``switchyard up``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import ServiceProcess, free_port, wait_ready

MODEL = "smollm2-135m-instruct"
API_KEY = "sk-test-" + "0" * 24


@pytest.fixture(scope="session")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One real model-worker (llama.cpp, SmolLM2-135M) for the whole test session."""
    port = free_port()
    logs = tmp_path_factory.mktemp("worker")
    proc = ServiceProcess(
        "switchyard_model_worker",
        {"SWITCHYARD_MODEL_WORKER_PORT": str(port), "SWITCHYARD_MODEL_WORKER_MAX_QUEUE": "8"},
        logs / "worker.log",
        port,
    )
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@dataclass
class Platform:
    gateway: str
    worker: str
    session: str
    webhook: str
    api_key: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"{self.gateway}/v1"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]


def start_platform(
    tmp: Path, api_key: str | None = API_KEY, extra: tuple[str, ...] = ()
) -> Platform:
    ports = {
        name: free_port() for name in ("gateway", "worker", "session", "webhook", "embeddings")
    }
    data_dir = tmp / "data"
    log_path = tmp / "switchyard-up.log"
    args = [
        sys.executable, "-m", "switchyard_cli.main", "up",
        "--port", str(ports["gateway"]),
        "--worker-port", str(ports["worker"]),
        "--session-port", str(ports["session"]),
        "--webhook-port", str(ports["webhook"]),
        "--embeddings-port", str(ports["embeddings"]),
        "--data-dir", str(data_dir),
        *extra,
    ]  # fmt: skip
    if api_key:
        args += ["--api-key", api_key]
    env = {k: v for k, v in os.environ.items() if k != "SWITCHYARD_API_KEY"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    platform = Platform(
        gateway=urls["gateway"], worker=urls["worker"], session=urls["session"],
        webhook=urls["webhook"], api_key=api_key or "", data_dir=data_dir, proc=proc,
        log_path=log_path,
    )  # fmt: skip
    try:
        wait_ready(platform.gateway, proc, timeout=180)
    except Exception as exc:
        stop_platform(platform)
        raise RuntimeError(f"{exc}\n--- switchyard up log ---\n{platform.logs()}") from exc
    return platform


def stop_platform(platform: Platform) -> int:
    if platform.proc.poll() is None:
        platform.proc.send_signal(signal.SIGTERM)
        try:
            platform.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            platform.proc.kill()
            platform.proc.wait()
    return platform.proc.returncode


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The whole platform, started the way users start it: ``switchyard up``."""
    p = start_platform(tmp_path_factory.mktemp("platform"))
    try:
        yield p
    finally:
        stop_platform(p)


@pytest.fixture
def openai_client(platform: Platform):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    client = OpenAI(base_url=platform.base_url, api_key=platform.api_key, max_retries=0)
    yield client
    client.close()
