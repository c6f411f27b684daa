"""The OpenAI response shapes the worker's native backends must produce, checked strictly.

Tests validate the worker's actual JSON against these models: no field missing, none
unknown, ids and objects as OpenAI names them, and finish reasons from the backend
interface's own ``FinishReason``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from switchyard_model_worker.backends.base import FinishReason


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(Strict):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int

    @model_validator(mode="after")
    def _adds_up(self) -> Usage:
        assert self.total_tokens == self.prompt_tokens + self.completion_tokens
        return self


class Message(Strict):
    role: Literal["assistant"]
    content: str


class ChatChoice(Strict):
    index: Literal[0]
    message: Message
    finish_reason: FinishReason
    logprobs: None


class ChatCompletion(Strict):
    id: str = Field(pattern=r"^chatcmpl-[0-9a-f]{32}$")
    object: Literal["chat.completion"]
    created: int = Field(gt=1_600_000_000)
    model: str
    choices: list[ChatChoice] = Field(min_length=1, max_length=1)
    usage: Usage


class Delta(Strict):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(Strict):
    index: Literal[0]
    delta: Delta
    finish_reason: FinishReason | None
    logprobs: None


class ChatCompletionChunk(Strict):
    id: str = Field(pattern=r"^chatcmpl-[0-9a-f]{32}$")
    object: Literal["chat.completion.chunk"]
    created: int = Field(gt=1_600_000_000)
    model: str
    choices: list[ChunkChoice] = Field(max_length=1)
    usage: Usage | None = None


class CompletionChoice(Strict):
    index: Literal[0]
    text: str
    finish_reason: FinishReason | None
    logprobs: None


class Completion(Strict):
    """A whole text completion, or one chunk of a streamed one (same object name)."""

    id: str = Field(pattern=r"^cmpl-[0-9a-f]{32}$")
    object: Literal["text_completion"]
    created: int = Field(gt=1_600_000_000)
    model: str
    choices: list[CompletionChoice] = Field(max_length=1)
    usage: Usage | None = None


class EmbeddingUsage(Strict):
    prompt_tokens: int = Field(gt=0)
    total_tokens: int


class Embedding(Strict):
    object: Literal["embedding"]
    index: int = Field(ge=0)
    embedding: list[float] | str


class EmbeddingList(Strict):
    object: Literal["list"]
    data: list[Embedding] = Field(min_length=1)
    model: str
    usage: EmbeddingUsage


def check_stream(chunks: list[dict[str, Any]], shape: type[Strict]) -> list[Any]:
    """Validate every chunk of one stream; they share one id and creation time."""
    parsed = [shape.model_validate(c) for c in chunks]
    assert len({(c["id"], c["created"]) for c in chunks}) == 1
    finished = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finished) == 1, "a stream ends with exactly one finish_reason"
    return parsed
