"""Processes and clients for the model-worker benchmark: engines, workers, streaming probes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process on a free port, logging to a file, ready when ``ready_path`` is 200."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], port: int, log_dir: Path
    ) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 180) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def start_engine(gguf: Path, threads: int, log_dir: Path) -> Proc:
    port = free_port()
    args = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--model_alias", "engine", "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--interrupt_requests", "False",
    ]  # fmt: skip
    return Proc("engine", args, {}, port, log_dir)


def start_worker(name: str, log_dir: Path, **settings: str) -> Proc:
    port = free_port()
    env = {
        "SWITCHYARD_MODEL_WORKER_PORT": str(port),
        "SWITCHYARD_MODEL_WORKER_LOG_LEVEL": "WARNING",
    }
    env.update({f"SWITCHYARD_MODEL_WORKER_{k.upper()}": v for k, v in settings.items()})
    return Proc(name, [sys.executable, "-m", "switchyard_model_worker"], env, port, log_dir)


@dataclass
class StreamResult:
    status: int
    ttft: float  # seconds from sending to the first generated text
    tokens: int  # chunks carrying text (one per token for llama.cpp)
    decode_tps: float  # (tokens - 1) / (last - first)
    total: float  # seconds for the whole request


def stream_chat(client: httpx.Client, url: str, body: dict[str, Any]) -> StreamResult:
    """POST a streaming chat completion and time its text chunks on arrival."""
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            r.read()
            now = time.perf_counter()
            return StreamResult(r.status_code, 0.0, 0, 0.0, now - started)
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("delta", {}).get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1
    total = time.perf_counter() - started
    tps = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return StreamResult(200, first - started if first else 0.0, tokens, tps, total)
