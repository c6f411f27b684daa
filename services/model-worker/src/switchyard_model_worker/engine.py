"""The generation engine: admission, the backend, and per-generation metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator

from switchyard_common.errors import (
    InternalError,
    InvalidRequestError,
    ModelNotFoundError,
    SwitchyardError,
)
from switchyard_model_worker.admission import Admission
from switchyard_model_worker.backends.base import (
    Backend,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    TextDelta,
)
from switchyard_model_worker.backends.llamacpp import PromptTooLongError
from switchyard_model_worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class Engine:
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
        self.loaded = False

    def check_model(self, model: str) -> None:
        if model not in self._names:
            raise ModelNotFoundError(model)

    async def run(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Admit, generate, and record metrics. Closing it early cancels the generation."""
        started = time.perf_counter()
        async with self.admission.slot():
            first_at = last_at = 0.0
            stats = GenerationStats()
            events = self.backend.generate(request, stats)
            try:
                async for event in events:
                    now = time.perf_counter()
                    if isinstance(event, TextDelta):
                        if first_at == 0.0:
                            first_at = now
                            self.metrics.ttft.observe(now - started)
                        else:
                            self.metrics.itl.observe(now - last_at)
                        last_at = now
                    yield event
            except PromptTooLongError as exc:
                raise InvalidRequestError(
                    str(exc), param="messages", code="context_length_exceeded"
                ) from exc
            except SwitchyardError:
                raise
            except Exception as exc:
                log.exception("generation failed")
                raise InternalError("The model failed while generating.") from exc
            finally:
                await events.aclose()
                self._record(stats, first_at, time.perf_counter())

    def _record(self, stats: GenerationStats, first_at: float, now: float) -> None:
        self.metrics.prompt_tokens.inc(stats.prompt_tokens)
        self.metrics.completion_tokens.inc(stats.completion_tokens)
        self.metrics.finished.labels(stats.finish_reason or "cancelled").inc()
        if stats.completion_tokens > 1 and first_at and now > first_at:
            self.metrics.tokens_per_second.observe((stats.completion_tokens - 1) / (now - first_at))
