"""The openai-compatible backend's engine handling: startup, health, metrics, /tokenize."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np

from switchyard_model_worker.backends.engine_http import sum_metric
from tests.support.fixtures import MODEL
from tests.support.procs import ServiceProcess, free_port, metric_value

from .conftest import wait_for

VLLM_METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B"} 3.0
vllm:num_requests_running{engine="1",model_name="meta-llama/Llama-3.1-8B"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B"} 7.0
"""


def test_vllm_metrics_are_summed_across_engines() -> None:
    assert sum_metric(VLLM_METRICS, "vllm:num_requests_running") == 5.0
    assert sum_metric(VLLM_METRICS, "vllm:num_requests_waiting") == 7.0
    assert sum_metric(VLLM_METRICS, "vllm:gpu_cache_usage_perc") is None


def front_worker(spawn_worker: Callable[..., ServiceProcess], engine: ServiceProcess) -> Any:
    """A relay worker whose engine is another switchyard worker: a real OpenAI-compatible
    server that publishes its queue on /metrics and serves vLLM-style /tokenize."""
    return spawn_worker(
        backend="openai-compatible",
        model_name="front",
        engine_url=engine.url,
        engine_health_path="/readyz",
        engine_running_metric="switchyard_worker_requests_in_flight",
        engine_waiting_metric="switchyard_worker_queue_depth",
        engine_metrics_interval_seconds="0.1",
        max_concurrency="4",
    ).wait_ready()


def test_engine_metrics_drive_the_reported_load(
    spawn_worker: Callable[..., ServiceProcess], worker: ServiceProcess
) -> None:
    front = front_worker(spawn_worker, worker)
    idle = httpx.get(f"{front.url}/load").json()
    assert idle["capacity"] == 4
    wait_for(lambda: "engine_running" in httpx.get(f"{front.url}/load").json(), what="engine load")
    body = {
        "model": "front",
        "messages": [{"role": "user", "content": "Tell me a long story."}],
        "max_tokens": 200,
        "logit_bias": {"0": -100, "1": -100, "2": -100},
        "stream": True,
    }
    seen: list[dict[str, Any]] = []

    def busy() -> None:
        with httpx.stream("POST", f"{front.url}/v1/chat/completions", json=body, timeout=300) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    seen.append(json.loads(line[6:]))

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        wait_for(
            lambda: httpx.get(f"{front.url}/load").json().get("engine_running") == 1.0,
            what="the engine to report one running request",
        )
        text = httpx.get(f"{front.url}/metrics").text
        assert metric_value(text, "switchyard_worker_engine_requests_running") == 1.0
        assert metric_value(text, "switchyard_worker_engine_requests_waiting") == 0.0
    finally:
        thread.join(timeout=300)
    assert seen and all(c["model"] == "front" for c in seen)
    wait_for(lambda: httpx.get(f"{front.url}/load").json()["engine_running"] == 0.0, what="idle")


def test_tokenize_falls_back_to_the_engine(
    spawn_worker: Callable[..., ServiceProcess], worker: ServiceProcess
) -> None:
    front = front_worker(spawn_worker, worker)
    messages = [{"role": "user", "content": "How long is this?"}]
    via_front = httpx.post(f"{front.url}/tokenize", json={"messages": messages}).json()
    direct = httpx.post(f"{worker.url}/tokenize", json={"messages": messages}).json()
    assert via_front["count"] == direct["count"] > 5
    # The engine's usage is relayed (the inner worker streams a usage chunk of its own).
    body = {
        "model": "front",
        "messages": messages,
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", f"{front.url}/v1/chat/completions", json=body, timeout=120) as r:
        chunks = [json.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]
    assert chunks[-1]["usage"]["prompt_tokens"] == direct["count"]


def test_startup_waits_for_the_engine_and_readiness_follows_it(
    spawn_worker: Callable[..., ServiceProcess], spawn_engine: Callable[..., Any]
) -> None:
    port = free_port()
    proc = spawn_worker(
        backend="openai-compatible", engine_url=f"http://127.0.0.1:{port}", max_queue="2"
    )
    wait_for(lambda: _status(proc, "/healthz") == 200, what="the worker to start")
    starting = httpx.get(f"{proc.url}/startupz")
    assert starting.status_code == 503 and starting.json()["status"] == "loading"
    assert _status(proc, "/readyz") == 503
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    early = httpx.post(f"{proc.url}/v1/chat/completions", json=chat, timeout=30)
    assert early.status_code == 503 and early.headers["retry-after"] == "5"
    assert "still loading" in early.json()["error"]["message"]
    engine = spawn_engine(port=port).wait_ready()
    wait_for(lambda: _status(proc, "/startupz") == 200, what="startup to finish")
    wait_for(lambda: _status(proc, "/readyz") == 200, what="readiness")
    assert httpx.post(f"{proc.url}/v1/chat/completions", json=chat, timeout=120).status_code == 200
    engine.stop()
    wait_for(lambda: _status(proc, "/readyz") == 503, what="readiness to drop")
    ready = httpx.get(f"{proc.url}/readyz").json()
    assert ready["checks"]["backend_healthy"] is False
    down = httpx.post(f"{proc.url}/v1/chat/completions", json=chat, timeout=30)
    assert down.status_code == 503
    assert down.headers["retry-after"] == "2"
    assert down.json()["error"]["code"] == "service_unavailable"
    assert _status(proc, "/startupz") == 200  # started once; liveness is not at stake


def test_engine_that_never_comes_up_is_a_clear_failed_start(
    spawn_worker: Callable[..., ServiceProcess],
) -> None:
    proc = spawn_worker(
        backend="openai-compatible",
        engine_url=f"http://127.0.0.1:{free_port()}",
        engine_startup_timeout_seconds="1",
    )
    wait_for(lambda: "model failed to load" in proc.logs(), what="the failure log line")
    startup = httpx.get(f"{proc.url}/startupz")
    assert startup.status_code == 503
    assert startup.json()["status"] == "failed"
    assert "was not healthy" in startup.json()["error"]
    assert proc.proc.poll() is None  # not a crash loop: alive, not ready
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    refused = httpx.post(f"{proc.url}/v1/chat/completions", json=chat, timeout=30)
    assert refused.status_code == 503
    assert "failed to load" in refused.json()["error"]["message"]
    assert _status(proc, "/healthz") == 200
    assert _status(proc, "/readyz") == 503


def _status(proc: ServiceProcess, path: str) -> int:
    try:
        return httpx.get(f"{proc.url}{path}", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_embeddings_relay_to_an_embedding_engine(
    spawn_worker: Callable[..., ServiceProcess], spawn_engine: Callable[..., Any]
) -> None:
    engine = spawn_engine("--embedding", "true").wait_ready()
    proc = spawn_worker(
        backend="openai-compatible",
        model_name="smol-embed",
        engine_url=engine.url,
        engine_embeddings="true",
    ).wait_ready()
    texts = ["The cat sat on the mat.", "A kitten rested on the rug."]
    r = httpx.post(
        f"{proc.url}/v1/embeddings", json={"model": "smol-embed", "input": texts}, timeout=120
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "smol-embed"
    assert [d["index"] for d in body["data"]] == [0, 1]
    # Relayed as the engine made it (llama_cpp.server gives SmolLM2's per-token vectors).
    assert np.asarray(body["data"][0]["embedding"]).shape[-1] == 576  # SmolLM2's hidden size
    text = httpx.get(f"{proc.url}/metrics").text
    assert metric_value(text, "switchyard_worker_embedding_inputs_total") == 2
    ok = {"endpoint": "embeddings", "status": "200"}
    assert metric_value(text, "switchyard_worker_requests_total", ok) == 1
