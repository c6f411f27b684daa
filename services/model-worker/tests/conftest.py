"""Model-worker fixtures: real engines and workers as processes on free ports.

- ``llama_server``: the real ``llama_cpp.server`` (llama.cpp's OpenAI server in Python)
  serving SmolLM2-135M, as an engine beside a worker would run.
- ``relay_worker``: a worker with the openai-compatible backend in front of it.
- ``embedding_worker``: a worker serving only the local all-MiniLM-L6-v2 embeddings.
- ``spawn_worker`` / ``spawn_engine``: factories for tests that need their own processes.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from switchyard_model_worker.model_files import default_gguf_path
from tests.support.procs import ServiceProcess, free_port

ENGINE_MODEL = "smol-engine"
RELAY_MODEL = "smollm2-relay"


class EngineServer:
    """``python -m llama_cpp.server`` on a free port, logging to a file."""

    def __init__(self, log_path: Path, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("ab")
        args = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(default_gguf_path()),
            "--model_alias", ENGINE_MODEL,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", "2048",
            "--interrupt_requests", "False",
            *extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 120.0) -> EngineServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"engine not ready after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def worker_process(log_path: Path, **env: str) -> ServiceProcess:
    port = free_port()
    full = {"SWITCHYARD_MODEL_WORKER_PORT": str(port)}
    full.update({f"SWITCHYARD_MODEL_WORKER_{k.upper()}": v for k, v in env.items()})
    return ServiceProcess("switchyard_model_worker", full, log_path, port)


def relay_env(engine: EngineServer, **extra: str) -> dict[str, str]:
    return {
        "backend": "openai-compatible",
        "model_name": RELAY_MODEL,
        "engine_url": engine.url,
        "tokenizer_path": str(default_gguf_path()),
        "max_concurrency": "1",
        "max_queue": "4",
        "engine_metrics_interval_seconds": "0.2",
        **extra,
    }


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start a worker with ``SWITCHYARD_MODEL_WORKER_<KEY>=value`` settings; stopped after."""
    started: list[ServiceProcess] = []

    def spawn(**env: str) -> ServiceProcess:
        proc = worker_process(tmp_path / f"worker-{len(started)}.log", **env)
        started.append(proc)
        return proc

    yield spawn
    for proc in started:
        proc.stop()


@pytest.fixture
def spawn_engine(tmp_path: Path) -> Iterator[Callable[..., EngineServer]]:
    started: list[EngineServer] = []

    def spawn(*extra: str, port: int | None = None) -> EngineServer:
        engine = EngineServer(tmp_path / f"engine-{len(started)}.log", *extra, port=port)
        started.append(engine)
        return engine

    yield spawn
    for engine in started:
        engine.stop()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineServer]:
    engine = EngineServer(tmp_path_factory.mktemp("engine") / "engine.log")
    try:
        yield engine.wait_ready()
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def relay_worker(
    llama_server: EngineServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    proc = worker_process(
        tmp_path_factory.mktemp("relay") / "worker.log", **relay_env(llama_server)
    )
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def embedding_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    proc = worker_process(
        tmp_path_factory.mktemp("embed") / "worker.log", backend="embeddings", max_queue="2"
    )
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()
