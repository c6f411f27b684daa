"""Processes and clients for the model-worker benchmark: engines, workers, streaming probes."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from switchyard_cli.processes import ChildProcess, free_port


class Proc:
    """A child process on a free port, logging to a file, ready when ``ready_path`` is 200."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], port: int, log_dir: Path
    ) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.child = ChildProcess(name, args, log_dir / f"{name}.log", env=env).start()
        self.log_path = self.child.log_path

    def wait_ready(self, path: str, timeout: float = 180) -> Proc:
        self.child.wait_ready(f"{self.url}{path}", timeout)
        return self

    def stop(self) -> None:
        self.child.stop(grace=20)


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
