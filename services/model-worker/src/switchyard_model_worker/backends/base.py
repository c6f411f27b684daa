"""The interface every backend implements.

A backend serves one model and says which endpoints it serves. It works in one of two ways:

- **native**: the worker parses OpenAI requests into ``GenerationRequest`` / text lists and
  the backend generates (``generate``) or embeds (``embed``); the worker builds the OpenAI
  responses. Used by the in-process backends (llama.cpp, the local embedding model).
- **relay** (``relays = True``): the client's OpenAI body, unknown fields included, is sent
  to an engine as it is (``relay``), and the engine's OpenAI responses come back chunk by
  chunk. Used by the openai-compatible backend in front of vLLM, llama.cpp's server, etc.

Either way the ``ModelRunner`` wraps every call in admission control and metrics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FinishReason = Literal["stop", "length", "cancelled", "tool_calls", "content_filter"]
Endpoint = Literal["chat", "completions", "embeddings"]


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate, independent of the API shape it came from.

    Exactly one of ``messages`` (chat, formatted with the model's own template) and
    ``prompt`` (raw text) is set.
    """

    max_tokens: int
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finished:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class RelayCall:
    """One OpenAI request to relay: ``path`` such as ``/v1/chat/completions`` and its body."""

    path: str
    body: dict[str, Any]
    stream: bool


@dataclass(frozen=True)
class RelayChunk:
    """One streamed chunk from the engine (already re-labelled with the worker's model name).

    ``output`` is true when it carries generated output (text or tool calls), which is what
    time-to-first-token and inter-token latency measure.
    """

    payload: dict[str, Any]
    output: bool


@dataclass(frozen=True)
class RelayResponse:
    """A whole (non-streamed) response from the engine."""

    status_code: int
    payload: dict[str, Any]


GenerationEvent = TextDelta | Finished
RelayEvent = RelayChunk | RelayResponse


@dataclass
class GenerationStats:
    """Filled in by the backend as it goes, so it is right however the generation ends."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason | None = None


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: npt.NDArray[np.float32]
    prompt_tokens: int


@dataclass(frozen=True)
class TokenCount:
    count: int
    tokens: list[int] | None = None


@dataclass(frozen=True)
class EngineLoad:
    """Load as reported by the engine itself (e.g. vLLM's ``/metrics``)."""

    running: float
    waiting: float


class PromptTooLongError(ValueError):
    """The prompt does not fit the model's context window; the API turns it into a 400
    (``context_length_exceeded``)."""

    def __init__(self, prompt_tokens: int, n_ctx: int) -> None:
        super().__init__(
            f"This model's maximum context length is {n_ctx} tokens; your prompt has "
            f"{prompt_tokens} tokens. Shorten the messages."
        )


class UnsupportedError(Exception):
    """The backend does not do this; the API turns it into a clear 400."""


class Backend(ABC):
    """Loads one model and serves it."""

    #: How many requests the backend can run at once (admission never exceeds it).
    max_parallel: int = 1
    #: Which OpenAI endpoints this backend serves.
    endpoints: frozenset[Endpoint] = frozenset({"chat", "completions"})
    #: True: requests go to ``relay`` as raw OpenAI bodies instead of ``generate``/``embed``.
    relays: bool = False
    #: Whether chat requests may carry ``tools`` / ``tool_choice``.
    supports_tools: bool = False

    @abstractmethod
    async def load(self) -> None:
        """Load the model; raise ``ModelLoadError`` with a clear message on failure."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""

    async def healthy(self) -> bool:
        """Readiness once loaded (an external engine may go away)."""
        return True

    async def engine_load(self) -> EngineLoad | None:
        """The engine's own view of its load, when it reports one."""
        return None

    def context_length(self) -> int | None:
        """The model's context window in tokens, when known."""
        return None

    async def count_tokens(
        self, *, text: str | None = None, messages: list[dict[str, Any]] | None = None
    ) -> TokenCount:
        """Count tokens with the model's own tokenizer; chat messages after its template."""
        raise UnsupportedError("This backend cannot count tokens.")

    def generate(
        self, request: GenerationRequest, stats: GenerationStats
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Yield text deltas and end with exactly one ``Finished``, keeping ``stats`` current.

        Closing the iterator early (client gone) must stop generation promptly; by the time
        ``aclose()`` returns, ``stats`` holds the final counts.
        """
        raise UnsupportedError("This backend does not generate text.")

    async def embed(self, texts: list[str]) -> EmbeddingResult:
        """One unit-length vector per text, plus the tokens read."""
        raise UnsupportedError("This backend does not compute embeddings.")

    def relay(self, call: RelayCall, stats: GenerationStats) -> AsyncGenerator[RelayEvent, None]:
        """Send ``call`` to the engine: one ``RelayResponse``, or ``RelayChunk``s when streaming.

        Errors before any output raise ``SwitchyardError``s; closing the iterator early
        closes the engine connection so the engine stops generating.
        """
        raise UnsupportedError("This backend does not relay requests.")


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says why."""
