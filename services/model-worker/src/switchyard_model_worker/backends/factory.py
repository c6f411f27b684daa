"""Build the backend the settings ask for."""

from __future__ import annotations

from switchyard_model_worker.backends.base import Backend
from switchyard_model_worker.config import WorkerSettings


def build_backend(settings: WorkerSettings) -> Backend:
    if settings.backend == "openai-compatible":
        from switchyard_model_worker.backends.openai_compat import OpenAICompatibleBackend

        return OpenAICompatibleBackend(
            model_name=settings.model_name,
            engine_url=settings.engine_url,
            engine_model=settings.engine_model,
            api_key=settings.engine_api_key,
            health_path=settings.engine_health_path,
            metrics_path=settings.engine_metrics_path,
            running_metric=settings.engine_running_metric,
            waiting_metric=settings.engine_waiting_metric,
            startup_timeout=settings.engine_startup_timeout_seconds,
            request_timeout=settings.engine_request_timeout_seconds,
            embeddings=settings.engine_embeddings,
            tokenizer_path=settings.tokenizer_path,
        )
    if settings.backend == "embeddings":
        from switchyard_model_worker.backends.embeddings import LocalEmbeddingBackend

        return LocalEmbeddingBackend(settings.model_path, batch_size=settings.embedding_batch_size)
    from switchyard_model_worker.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(
        settings.model_path,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_batch=settings.n_batch,
        n_gpu_layers=settings.n_gpu_layers,
        main_gpu=settings.main_gpu,
        flash_attn=settings.flash_attn,
        reuse_prompt_prefix=settings.reuse_prompt_prefix,
        warmup=settings.warmup,
    )
