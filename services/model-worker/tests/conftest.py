"""Model-worker fixtures: real engines and workers as processes on free ports.

- ``llama_server``: the real ``llama_cpp.server`` (llama.cpp's OpenAI server in Python)
  serving SmolLM2-135M, as an engine beside a worker would run.
- ``relay_worker``: a worker with the openai-compatible backend in front of it.
- ``embedding_worker``: a worker serving only the local all-MiniLM-L6-v2 embeddings.
- ``spawn_worker`` / ``spawn_engine``: factories for tests that need their own processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from switchyard_cli.processes import wait_until
from switchyard_model_worker.model_files import default_gguf_path
from tests.support.procs import ServiceProcess, free_port

ENGINE_MODEL = "smol-engine"
RELAY_MODEL = "smollm2-relay"


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail the test naming ``what`` after ``timeout``."""
    if not wait_until(check, timeout, interval=0.02):
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def engine_process(log_path: Path, *extra: str, port: int | None = None) -> ServiceProcess:
    """``python -m llama_cpp.server`` serving SmolLM2 on a free port (ready: ``/v1/models``)."""
    port = port or free_port()
    args = [
        "--model", str(default_gguf_path()),
        "--model_alias", ENGINE_MODEL,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--interrupt_requests", "False",
        *extra,
    ]  # fmt: skip
    return ServiceProcess(
        "llama_cpp.server", {}, log_path, port, args=args, ready_path="/v1/models"
    )


def worker_process(log_path: Path, **env: str) -> ServiceProcess:
    port = free_port()
    full = {"SWITCHYARD_MODEL_WORKER_PORT": str(port)}
    full.update({f"SWITCHYARD_MODEL_WORKER_{k.upper()}": v for k, v in env.items()})
    return ServiceProcess("switchyard_model_worker", full, log_path, port)


def relay_env(engine: ServiceProcess, **extra: str) -> dict[str, str]:
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
def spawn_engine(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def spawn(*extra: str, port: int | None = None) -> ServiceProcess:
        engine = engine_process(tmp_path / f"engine-{len(started)}.log", *extra, port=port)
        started.append(engine)
        return engine

    yield spawn
    for engine in started:
        engine.stop()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    engine = engine_process(tmp_path_factory.mktemp("engine") / "engine.log")
    try:
        yield engine.wait_ready()
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def relay_worker(
    llama_server: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
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
