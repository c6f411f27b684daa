"""The model runner: the backend behind admission control, with per-request metrics.

(The *engine*, elsewhere in the worker, is an external inference server that the
openai-compatible backend relays to; the runner wraps whichever backend serves the model.)

Every generation, relay and embedding call takes an admission slot for as long as it runs;
closing a generation early (client gone) releases the slot as soon as the backend stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

from opentelemetry import trace

from switchyard_common.errors import (
    InternalError,
    InvalidRequestError,
    ModelNotFoundError,
    ServiceUnavailableError,
    SwitchyardError,
)
from switchyard_common.telemetry import exemplar, record_genai
from switchyard_model_worker.admission import Admission, Rejected
from switchyard_model_worker.backends.base import (
    Backend,
    EmbeddingResult,
    Endpoint,
    EngineLoad,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    PromptTooLongError,
    RelayCall,
    RelayChunk,
    RelayEvent,
    RelayResponse,
    TextDelta,
    UnsupportedError,
)
from switchyard_model_worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

E = TypeVar("E", GenerationEvent, RelayEvent)

LoadState = Literal["loading", "loaded", "failed"]


@dataclass
class LoadStatus:
    state: LoadState = "loading"
    started_at: float = 0.0
    seconds: float | None = None
    error: str | None = None


class ModelRunner:
    """Admits, meters and runs every call on the one backend; knows the model's names and
    whether it has loaded."""

    def __init__(
        self,
        backend: Backend,
        admission: Admission,
        metrics: WorkerMetrics,
        model_name: str,
        aliases: list[str],
    ) -> None:
        self.backend = backend
        self.admission = admission
        self.metrics = metrics
        self.model_name = model_name
        self._names = {model_name, *aliases}
        self.status = LoadStatus(started_at=time.monotonic())
        #: The engine's own load report (openai-compatible engines that publish metrics).
        self.engine_load: EngineLoad | None = None

    @property
    def loaded(self) -> bool:
        return self.status.state == "loaded"

    def check_model(self, model: str | None, endpoint: Endpoint | None = None) -> None:
        """404 for another model, 400 for an endpoint it does not serve, 503 until loaded."""
        if model is not None and model not in self._names:
            raise ModelNotFoundError(model)
        if endpoint is not None and endpoint not in self.backend.endpoints:
            served = ", ".join(sorted(self.backend.endpoints))
            raise InvalidRequestError(
                f"The model '{model}' does not serve {endpoint} (it serves: {served}).",
                param="model",
                code="unsupported_endpoint",
            )
        if not self.loaded:
            failed = self.status.state == "failed"
            raise ServiceUnavailableError(
                "The model failed to load on this worker."
                if failed
                else "The model is still loading; retry shortly.",
                headers={"retry-after": "5"},
            )

    # Both hand out the metered generator itself (no wrapping generator): closing it early
    # runs its ``finally`` then and there, in the request's task, while the request's span
    # is still open; a wrapper would leave it to the event loop's finaliser, later and
    # outside the request (the slot held meanwhile, the GenAI attributes lost).
    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Admit, generate, and record metrics. Closing it early cancels the generation."""
        param = "messages" if request.messages is not None else "prompt"
        return self._metered(lambda s: self.backend.generate(request, s), param)

    def relay(self, call: RelayCall) -> AsyncGenerator[RelayEvent, None]:
        """Admit, relay to the engine, and record metrics."""
        return self._metered(lambda s: self.backend.relay(call, s))

    async def relay_embeddings(self, call: RelayCall, inputs: int) -> RelayResponse:
        """Admit and relay one embeddings request to the engine."""
        async with self._slot():
            stats = GenerationStats()
            events = self.backend.relay(call, stats)
            try:
                event = await anext(events)
            finally:
                await events.aclose()
        assert isinstance(event, RelayResponse)
        self.metrics.prompt_tokens.inc(stats.prompt_tokens)
        self.metrics.embedding_inputs.inc(inputs)
        return event

    async def embed(self, texts: list[str]) -> EmbeddingResult:
        async with self._slot():
            try:
                result = await self.backend.embed(texts)
            except UnsupportedError as exc:
                raise InvalidRequestError(str(exc), code="unsupported_endpoint") from exc
        self.metrics.prompt_tokens.inc(result.prompt_tokens)
        self.metrics.embedding_inputs.inc(len(texts))
        return result

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """An admission slot, recording queue wait time and rejections."""
        started = time.perf_counter()
        try:
            slot = self.admission.slot()
            await slot.__aenter__()
        except Rejected as exc:
            self.metrics.rejected.labels(exc.reason).inc()
            raise
        self.metrics.queue_wait.observe(time.perf_counter() - started)
        try:
            yield
        finally:
            await slot.__aexit__(None, None, None)

    async def _metered(
        self, start: Callable[[GenerationStats], AsyncGenerator[E, None]], param: str = "messages"
    ) -> AsyncGenerator[E, None]:
        started = time.perf_counter()
        async with self._slot():
            first_at = last_at = 0.0
            stats = GenerationStats()
            events = start(stats)
            try:
                async for event in events:
                    if isinstance(event, TextDelta) or (
                        isinstance(event, RelayChunk) and event.output
                    ):
                        now = time.perf_counter()
                        if first_at == 0.0:
                            first_at = now
                            self.metrics.ttft.observe(now - started, exemplar())
                        else:
                            self.metrics.itl.observe(now - last_at)
                        last_at = now
                    yield event
            except PromptTooLongError as exc:
                raise InvalidRequestError(
                    str(exc), param=param, code="context_length_exceeded"
                ) from exc
            except UnsupportedError as exc:
                raise InvalidRequestError(str(exc), code="unsupported_endpoint") from exc
            except SwitchyardError:
                raise
            except Exception as exc:
                log.exception("generation failed")
                raise InternalError("The model failed while generating.") from exc
            finally:
                try:
                    await events.aclose()
                finally:
                    self._record(stats, first_at, time.perf_counter(), param)

    def _record(
        self, stats: GenerationStats, first_at: float, now: float, param: str = "messages"
    ) -> None:
        span = trace.get_current_span()
        if span.is_recording():  # GenAI attributes on a sampled request's span
            record_genai(
                span, "chat_completions" if param == "messages" else "completions",
                request_model=self.model_name,
                response_model=self.model_name, input_tokens=stats.prompt_tokens,
                output_tokens=stats.completion_tokens,
                finish_reasons=[stats.finish_reason or "cancelled"],
                first_token_ago=now - first_at if first_at else None,
            )  # fmt: skip
        self.metrics.prompt_tokens.inc(stats.prompt_tokens)
        self.metrics.completion_tokens.inc(stats.completion_tokens)
        self.metrics.finished.labels(stats.finish_reason or "cancelled").inc()
        if stats.completion_tokens > 1 and first_at and now > first_at:
            self.metrics.tokens_per_second.observe((stats.completion_tokens - 1) / (now - first_at))
