"""An OpenAI-compatible engine running beside the worker (vLLM, llama.cpp's server, TGI,
Ollama): requests are relayed as they came, streams chunk by chunk.

The worker keeps admission, metrics and readiness: it is ready while the engine's health
endpoint answers, and it reads the engine's own queue metrics (vLLM's
``vllm:num_requests_running`` / ``vllm:num_requests_waiting``) to report load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import httpx

from switchyard_common.errors import UpstreamError
from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_model_worker.backends.base import (
    Backend,
    Endpoint,
    EngineLoad,
    GenerationStats,
    ModelLoadError,
    RelayCall,
    RelayEvent,
    RelayResponse,
    TokenCount,
    UnsupportedError,
)
from switchyard_model_worker.backends.engine_http import (
    error_from_response,
    sse_payloads,
    sum_metric,
    transport_error,
)
from switchyard_model_worker.backends.gguf_tokenizer import GgufTokenizer
from switchyard_model_worker.backends.relay_accounting import (
    StreamAccounting,
    account_whole,
    message_text,
)

log = logging.getLogger(__name__)


class OpenAICompatibleBackend(Backend):
    relays = True
    supports_tools = True

    def __init__(
        self,
        *,
        model_name: str,
        engine_url: str,
        engine_model: str = "",
        api_key: str | None = None,
        health_path: str = "/v1/models",
        metrics_path: str = "/metrics",
        running_metric: str = "vllm:num_requests_running",
        waiting_metric: str = "vllm:num_requests_waiting",
        startup_timeout: float = 600.0,
        request_timeout: float = 600.0,
        embeddings: bool = False,
        tokenizer_path: str | None = None,
        max_parallel: int = 1024,
    ) -> None:
        self.model_name = model_name
        self.engine_url = engine_url.rstrip("/")
        self.engine_model = engine_model
        self.health_path = health_path
        self.metrics_path = metrics_path
        self.running_metric = running_metric
        self.waiting_metric = waiting_metric
        self.startup_timeout = startup_timeout
        self.tokenizer_path = tokenizer_path
        self.max_parallel = max_parallel
        served: set[Endpoint] = {"chat", "completions"}
        if embeddings:
            served.add("embeddings")
        self.endpoints = frozenset(served)
        self._max_model_len: int | None = None
        self._tokenizer: GgufTokenizer | None = None
        self._metrics_supported = bool(metrics_path)
        self._client = create_http_client(
            HttpClientConfig(read_timeout=request_timeout, pool_timeout=request_timeout),
            base_url=self.engine_url,
        )
        if api_key:
            self._client.headers["authorization"] = f"Bearer {api_key}"

    # ------------------------------------------------------------------ lifecycle

    async def load(self) -> None:
        started = time.monotonic()
        log.info("waiting for the engine", extra={"engine_url": self.engine_url})
        next_log = started + 10
        while not await self.healthy():
            now = time.monotonic()
            if now - started > self.startup_timeout:
                raise ModelLoadError(
                    f"The engine at {self.engine_url} was not healthy ({self.health_path}) "
                    f"after {self.startup_timeout:.0f}s."
                )
            if now >= next_log:
                log.info(
                    "still waiting for the engine",
                    extra={"engine_url": self.engine_url, "seconds": round(now - started, 1)},
                )
                next_log = now + 10
            await asyncio.sleep(0.25)
        await self._discover_model()
        if self.tokenizer_path:
            path = Path(self.tokenizer_path)
            self._tokenizer = await asyncio.to_thread(GgufTokenizer.open_vocab_only, path)
        log.info(
            "engine ready",
            extra={
                "engine_url": self.engine_url,
                "engine_model": self.engine_model,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    async def _discover_model(self) -> None:
        try:
            resp = await self._client.get("/v1/models", timeout=10)
            resp.raise_for_status()
            models = resp.json().get("data") or []
        except (httpx.HTTPError, ValueError) as exc:
            if self.engine_model:
                return  # configured explicitly; the engine just doesn't list models
            raise ModelLoadError(f"Could not list the engine's models: {exc!r}") from exc
        if not self.engine_model:
            if not models:
                raise ModelLoadError(f"The engine at {self.engine_url} serves no model.")
            self.engine_model = str(models[0]["id"])
        for card in models:
            if card.get("id") == self.engine_model and isinstance(card.get("max_model_len"), int):
                self._max_model_len = card["max_model_len"]

    async def close(self) -> None:
        await self._client.aclose()

    async def healthy(self) -> bool:
        try:
            resp = await self._client.get(self.health_path, timeout=1.5)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def engine_load(self) -> EngineLoad | None:
        if not self._metrics_supported:
            return None
        try:
            resp = await self._client.get(self.metrics_path, timeout=2)
        except httpx.HTTPError:
            return None
        if resp.status_code == 404:
            log.info("the engine has no metrics endpoint; load is the worker's own")
            self._metrics_supported = False
            return None
        if resp.status_code != 200:
            return None
        running = sum_metric(resp.text, self.running_metric)
        waiting = sum_metric(resp.text, self.waiting_metric)
        if running is None and waiting is None:
            return None
        return EngineLoad(running=running or 0.0, waiting=waiting or 0.0)

    def context_length(self) -> int | None:
        return self._max_model_len

    # ------------------------------------------------------------------ tokens

    async def count_tokens(
        self, *, text: str | None = None, messages: list[dict[str, Any]] | None = None
    ) -> TokenCount:
        if self._tokenizer is not None:
            return self._tokenizer.count(text=text, messages=messages)
        body: dict[str, Any] = {"model": self.engine_model}
        if messages is not None:
            body.update(messages=messages, add_generation_prompt=True)
        else:
            body["prompt"] = text or ""
        try:
            resp = await self._client.post("/tokenize", json=body, timeout=30)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        if resp.status_code in (404, 405):
            raise UnsupportedError(
                "The engine has no /tokenize endpoint; set SWITCHYARD_MODEL_WORKER_TOKENIZER_PATH "
                "to a GGUF file of the model to count tokens locally."
            )
        if resp.status_code != 200:
            raise error_from_response(resp.status_code, resp.content, resp.headers)
        data = resp.json()
        tokens = data.get("tokens")
        return TokenCount(count=int(data.get("count", len(tokens or []))), tokens=tokens)

    # ------------------------------------------------------------------ relay

    async def relay(
        self, call: RelayCall, stats: GenerationStats
    ) -> AsyncGenerator[RelayEvent, None]:
        body = {**call.body, "model": self.engine_model}
        if not call.stream:
            yield await self._relay_whole(call.path, body, stats)
            return
        options = body.get("stream_options") or {}
        accounting = StreamAccounting(self.model_name, bool(options.get("include_usage")), stats)
        body["stream_options"] = {**options, "include_usage": True}
        request = self._client.build_request("POST", call.path, json=body)
        try:
            resp = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        try:
            if resp.status_code != 200:
                raw = await resp.aread()
                raise error_from_response(resp.status_code, raw, resp.headers)
            async for payload in sse_payloads(resp):
                chunk = accounting.take(payload)
                if chunk is not None:
                    yield chunk
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        finally:
            # Closing the connection is what stops the engine: finish it even when this
            # task is being cancelled (client gone), which would interrupt a plain await.
            await asyncio.shield(resp.aclose())
        if stats.finish_reason is None:
            raise UpstreamError("The engine ended the stream before finishing.")
        if not accounting.saw_usage:
            stats.prompt_tokens = self._local_prompt_tokens(call.body)
        usage_chunk = accounting.usage_chunk()
        if usage_chunk is not None:
            yield usage_chunk

    def _local_prompt_tokens(self, body: dict[str, Any]) -> int:
        """Prompt tokens counted here, for engines that stream no usage (0 if unknown)."""
        if self._tokenizer is None:
            return 0
        try:
            if isinstance(body.get("messages"), list):
                messages = [
                    {"role": m.get("role"), "content": message_text(m.get("content"))}
                    for m in body["messages"]
                ]
                return self._tokenizer.count(messages=messages).count
            if isinstance(body.get("prompt"), str):
                return self._tokenizer.count(text=body["prompt"]).count
        except Exception:  # counting is best effort; the response is already out
            log.debug("could not count prompt tokens locally", exc_info=True)
        return 0

    async def _relay_whole(
        self, path: str, body: dict[str, Any], stats: GenerationStats
    ) -> RelayResponse:
        try:
            resp = await self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        if resp.status_code != 200:
            raise error_from_response(resp.status_code, resp.content, resp.headers)
        try:
            payload = resp.json()
        except ValueError as exc:
            raise UpstreamError("The engine sent a malformed response.") from exc
        if not isinstance(payload, dict):
            raise UpstreamError("The engine sent a malformed response.")
        account_whole(payload, self.model_name, stats)
        return RelayResponse(resp.status_code, payload)
