"""The interface every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "cancelled"]


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


GenerationEvent = TextDelta | Finished


@dataclass
class GenerationStats:
    """Filled in by the backend as it goes, so it is right however the generation ends."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason | None = None


class Backend(ABC):
    """Loads one model and generates from it."""

    #: How many generations the backend can run at once.
    max_parallel: int = 1

    @abstractmethod
    async def load(self) -> None:
        """Load the model; raise ``ModelLoadError`` with a clear message on failure."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model."""

    @abstractmethod
    def generate(
        self, request: GenerationRequest, stats: GenerationStats
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Yield text deltas and end with exactly one ``Finished``, keeping ``stats`` current.

        Closing the iterator early (client gone) must stop generation promptly; by the time
        ``aclose()`` returns, ``stats`` holds the final counts.
        """


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says why."""
