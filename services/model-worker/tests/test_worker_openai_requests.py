"""The OpenAI request bodies the worker validates: tolerant of unknown fields, strict about
bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from switchyard_model_worker.openai_requests import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    EmbeddingRequest,
)

MSG = [{"role": "user", "content": "hi"}]


def chat(**overrides: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", "messages": MSG, **overrides})


def test_unknown_fields_are_accepted_and_preserved() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi", "cache_hint": "x"}],
            "reasoning_effort": "high",
            "metadata": {"k": "v"},
        }
    )
    dumped = req.model_dump(exclude_none=True)
    assert dumped["reasoning_effort"] == "high"
    assert dumped["metadata"] == {"k": "v"}
    assert dumped["messages"][0]["cache_hint"] == "x"
    assert req.model_extra == {"reasoning_effort": "high", "metadata": {"k": "v"}}


def test_message_text_plain_none_and_parts() -> None:
    assert ChatMessage(role="user", content="plain").text() == "plain"
    assert ChatMessage(role="assistant", content=None).text() == ""
    parts = ChatMessage(
        role="user",
        content=[
            {"type": "text", "text": "Hello, "},
            {"type": "image_url", "image_url": {"url": "http://x/img.png"}},
            {"text": "world"},
            {"type": "text", "text": "!"},
        ],
    )
    assert parts.text() == "Hello, world!"


def test_unknown_role_rejected() -> None:
    with pytest.raises(ValidationError):
        ChatMessage.model_validate({"role": "robot", "content": "x"})


@pytest.mark.parametrize(
    "overrides",
    [
        {"temperature": 2.1},
        {"temperature": -0.1},
        {"top_p": 1.5},
        {"n": 0},
        {"n": 129},
        {"max_tokens": 0},
        {"max_completion_tokens": 0},
        {"presence_penalty": 2.5},
        {"frequency_penalty": -3},
        {"model": ""},
        {"messages": []},
    ],
    ids=lambda o: next(iter(o)) + "=" + repr(next(iter(o.values()))),
)
def test_bounds_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        chat(**overrides)
    assert info.value.errors()[0]["loc"][0] == next(iter(overrides))


def test_bounds_edges_accepted() -> None:
    req = chat(temperature=2, top_p=0, n=128, presence_penalty=-2, frequency_penalty=2)
    assert req.temperature == 2


def test_missing_model_rejected() -> None:
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"messages": MSG})


def test_stop_list_and_token_limit() -> None:
    assert chat().stop_list() == []
    assert chat(stop="END").stop_list() == ["END"]
    assert chat(stop=["a", "b"]).stop_list() == ["a", "b"]
    assert chat().token_limit() is None
    assert chat(max_tokens=10).token_limit() == 10
    assert chat(max_tokens=10, max_completion_tokens=5).token_limit() == 5


def test_stream_options() -> None:
    req = chat(stream=True, stream_options={"include_usage": True})
    assert req.stream is True
    assert req.stream_options is not None and req.stream_options.include_usage is True


def test_completion_and_embedding_requests() -> None:
    assert CompletionRequest(model="m", prompt="once").prompt == "once"
    with pytest.raises(ValidationError):
        CompletionRequest(model="m", prompt=[])
    assert EmbeddingRequest(model="e", input=[[1, 2], [3]]).encoding_format == "float"
    with pytest.raises(ValidationError):
        EmbeddingRequest.model_validate({"model": "e", "input": "x", "encoding_format": "int8"})


def test_include_usage_only_when_asked() -> None:
    assert chat().include_usage() is False
    assert chat(stream_options={"include_usage": False}).include_usage() is False
    assert chat(stream_options={"include_usage": True}).include_usage() is True
