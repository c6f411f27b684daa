"""llama.cpp in-process: the embedded CPU default, with GPU offload knobs.

Generation runs in a dedicated worker thread so the event loop never blocks. The token loop
is ours: it gives exact usage counts, real finish reasons, stop sequences held back across
tokens, and cancellation between any two tokens.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from switchyard_model_worker.backends.base import (
    Backend,
    Finished,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    ModelLoadError,
    PromptTooLongError,
    TextDelta,
    TokenCount,
)
from switchyard_model_worker.backends.gguf_tokenizer import GgufTokenizer
from switchyard_model_worker.model_files import resolve_model_path
from switchyard_model_worker.stops import StopMatcher

log = logging.getLogger(__name__)

_END = object()


class LlamaCppBackend(Backend):
    max_parallel = 1  # one llama.cpp context generates one sequence at a time
    endpoints = frozenset({"chat", "completions"})

    def __init__(
        self,
        model_path: str | None,
        *,
        n_ctx: int,
        n_threads: int,
        n_batch: int,
        n_gpu_layers: int,
        main_gpu: int = 0,
        flash_attn: bool = False,
        reuse_prompt_prefix: bool = False,
        warmup: bool = True,
    ) -> None:
        self.reuse_prompt_prefix = reuse_prompt_prefix
        self.configured_path = model_path
        self.model_path: Path | None = None
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_batch = n_batch
        self.n_gpu_layers = n_gpu_layers
        self.main_gpu = main_gpu
        self.flash_attn = flash_attn
        self.warmup = warmup
        self._llama: Any = None
        self._tokenizer: GgufTokenizer | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")

    async def load(self) -> None:
        started = time.perf_counter()
        self.model_path = resolve_model_path(self.configured_path)
        size_mb = round(self.model_path.stat().st_size / 1e6, 1)
        log.info(
            "loading model: reading weights",
            extra={
                "model_path": str(self.model_path),
                "size_mb": size_mb,
                "n_gpu_layers": self.n_gpu_layers,
                "n_ctx": self.n_ctx,
                "n_threads": self.n_threads,
            },
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load_sync)
        log.info(
            "loading model: weights ready",
            extra={"seconds": round(time.perf_counter() - started, 3)},
        )
        if self.warmup:
            stats = GenerationStats()
            warm = GenerationRequest(max_tokens=1, prompt="Hello", temperature=0.0)
            async for _ in self.generate(warm, stats):
                pass
            log.info(
                "loading model: warm-up generation done",
                extra={"seconds": round(time.perf_counter() - started, 3)},
            )

    def _load_sync(self) -> None:
        try:
            from llama_cpp import Llama, llama_supports_gpu_offload
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelLoadError(f"llama-cpp-python is not installed: {exc}") from exc
        assert self.model_path is not None
        if self.n_gpu_layers != 0 and not llama_supports_gpu_offload():
            log.warning(
                "n_gpu_layers is set but this llama-cpp-python build cannot offload to a GPU; "
                "the model runs on the CPU (install a CUDA/ROCm/Metal build to use the GPU)"
            )
        try:
            llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=self.n_batch,
                n_gpu_layers=self.n_gpu_layers,
                main_gpu=self.main_gpu,
                flash_attn=self.flash_attn,
                verbose=False,
            )
        except Exception as exc:
            raise ModelLoadError(f"llama.cpp could not load {self.model_path}: {exc}") from exc
        self._tokenizer = GgufTokenizer(llama, self.model_path)
        self._llama = llama

    async def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._llama is not None:
            self._llama.close()
            self._llama = None

    def context_length(self) -> int | None:
        return self.n_ctx

    async def count_tokens(
        self, *, text: str | None = None, messages: list[dict[str, Any]] | None = None
    ) -> TokenCount:
        assert self._tokenizer is not None
        return self._tokenizer.count(text=text, messages=messages)

    async def generate(
        self, request: GenerationRequest, stats: GenerationStats
    ) -> AsyncGenerator[GenerationEvent, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                self._generate_sync(request, stats, cancel, emit)
            except BaseException as exc:
                emit(exc)
            finally:
                emit(_END)

        future = loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            # Client gone or done: stop the thread after its current token, and hold the
            # slot until it has really stopped (the llama context is shared).
            cancel.set()
            await asyncio.shield(future)

    def _prompt_tokens(self, request: GenerationRequest) -> tuple[list[int], list[str]]:
        assert self._tokenizer is not None
        if request.messages is not None:
            return self._tokenizer.chat_tokens(request.messages)
        assert request.prompt is not None
        return self._tokenizer.text_tokens(request.prompt), []

    def _generate_sync(
        self,
        request: GenerationRequest,
        stats: GenerationStats,
        cancel: threading.Event,
        emit: Callable[[object], None],
    ) -> None:
        import llama_cpp

        llama = self._llama
        tokens, template_stops = self._prompt_tokens(request)
        if len(tokens) >= self.n_ctx:
            raise PromptTooLongError(len(tokens), self.n_ctx)
        stats.prompt_tokens = len(tokens)
        max_tokens = min(request.max_tokens, self.n_ctx - len(tokens))
        if not self.reuse_prompt_prefix:
            # Re-evaluate the whole prompt: reusing a cached prefix changes the numerics
            # slightly, and then seeded or greedy requests would not repeat exactly.
            llama.reset()
        llama.set_seed(request.seed if request.seed is not None else random.getrandbits(31))
        matcher = StopMatcher([*request.stop, *template_stops])
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        vocab = llama._model.vocab
        generated = 0
        finish: FinishReason = "length"
        matched_stop = False
        token_stream = llama.generate(
            tokens,
            temp=request.temperature,
            top_p=request.top_p,
            top_k=40,
            min_p=0.05,
            repeat_penalty=1.0,
            frequency_penalty=request.frequency_penalty,
            presence_penalty=request.presence_penalty,
            logits_processor=_logit_bias_processor(request.logit_bias),
        )
        try:
            for token in token_stream:
                if cancel.is_set():
                    finish = "cancelled"
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                generated += 1
                stats.completion_tokens = generated
                text, stopped = matcher.feed(decoder.decode(llama.detokenize([token])))
                if text:
                    emit(TextDelta(text))
                if stopped:
                    finish, matched_stop = "stop", True
                    break
                if generated >= max_tokens:
                    break
        finally:
            token_stream.close()
        stats.finish_reason = finish
        if finish != "cancelled" and not matched_stop:
            # Release what was held back for a stop sequence that never completed.
            text, stopped = matcher.feed(decoder.decode(b"", final=True))
            rest = text + ("" if stopped else matcher.flush())
            if rest:
                emit(TextDelta(rest))
        emit(Finished(finish, len(tokens), generated))


def _logit_bias_processor(bias: dict[int, float]) -> Any:
    if not bias:
        return None
    ids = np.fromiter(bias.keys(), dtype=np.int64)
    values = np.fromiter(bias.values(), dtype=np.float32)

    def apply(_: Any, scores: Any) -> Any:
        scores[ids] += values
        return scores

    return [apply]
