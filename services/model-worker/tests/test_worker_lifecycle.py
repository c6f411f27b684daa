"""Model loading and shutdown, each against its own worker process."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from switchyard_model_worker.backends.base import ModelLoadError
from switchyard_model_worker.model_files import default_gguf_path, resolve_model_path
from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess

from .conftest import wait_for, worker_process

LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Tell me a very long story."}],
    "max_tokens": 200,
    "logit_bias": {"0": -100, "1": -100, "2": -100},
}


def start_worker(tmp_path: Path, **env: str) -> ServiceProcess:
    return worker_process(tmp_path / "worker.log", **env)


def test_default_model_is_the_packaged_gguf() -> None:
    path = default_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert resolve_model_path(None) == path


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="Model file not found"):
        resolve_model_path(str(tmp_path / "nope.gguf"))


def test_unloadable_model_keeps_worker_alive_but_not_ready(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    proc = start_worker(tmp_path, model_path=str(bogus))
    try:
        wait_for(lambda: "model failed to load" in proc.logs(), 30, "the failure log line")
        assert str(bogus) in proc.logs()
        assert httpx.get(f"{proc.url}/healthz").status_code == 200
        ready = httpx.get(f"{proc.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["model_loaded"] is False
        assert proc.proc.poll() is None
    finally:
        proc.stop()


async def test_sigterm_finishes_in_flight_request_then_exits(tmp_path: Path) -> None:
    # A grace period long enough for a loaded machine (60 tokens can take a minute there).
    proc = start_worker(tmp_path, shutdown_grace_seconds="240").wait_ready()
    async with httpx.AsyncClient(base_url=proc.url, timeout=300) as client:
        request = asyncio.create_task(
            client.post("/v1/chat/completions", json={**LONG, "max_tokens": 60})
        )
        while (await client.get("/load")).json()["in_flight"] == 0:
            await asyncio.sleep(0.01)
        code = await asyncio.to_thread(proc.stop, signal.SIGTERM, 250)
        response = await request
    assert response.status_code == 200
    assert response.json()["usage"]["completion_tokens"] == 60
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert code in (0, -signal.SIGTERM)
    assert "Finished server process" in proc.logs()


def test_gpu_offload_request_on_a_cpu_build_is_explained_and_still_serves(
    tmp_path: Path,
) -> None:
    import llama_cpp

    proc = start_worker(tmp_path, n_gpu_layers="-1", n_ctx="512").wait_ready()
    try:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        r = httpx.post(f"{proc.url}/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200
        warned = "cannot offload to a GPU" in proc.logs()
        assert warned == (not llama_cpp.llama_supports_gpu_offload())
        assert "loading model: weights ready" in proc.logs()
        tokenized = httpx.post(f"{proc.url}/tokenize", json={"text": "hi"}).json()
        assert tokenized["max_model_len"] == 512
    finally:
        proc.stop()


async def test_shutdown_past_the_grace_period_still_exits(tmp_path: Path) -> None:
    proc = start_worker(tmp_path, shutdown_grace_seconds="2").wait_ready()
    async with httpx.AsyncClient(base_url=proc.url, timeout=300) as client:
        body = {**LONG, "max_tokens": 1900, "stream": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            lines = r.aiter_lines()
            while not (await anext(lines)).startswith("data: {"):
                pass
            started = time.monotonic()
            proc.proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.proc.wait, 60)
            elapsed = time.monotonic() - started
    assert code in (0, -signal.SIGTERM)
    assert 1.5 < elapsed < 30, elapsed  # waited for the grace period, then stopped the rest
    assert "Finished server process" in proc.logs()
