"""OpenAI chat and completion requests turned into native generation requests."""

from __future__ import annotations

import pytest

from switchyard_common.errors import InvalidRequestError
from switchyard_model_worker.generation_requests import (
    completion_to_generation_request,
    template_messages,
    to_generation_request,
)
from switchyard_model_worker.openai_requests import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
)


def test_template_messages_map_openai_roles_and_flatten_parts() -> None:
    messages = [
        ChatMessage(role="developer", content="Be brief."),
        ChatMessage(role="user", content=[{"type": "text", "text": "Hi "}, {"text": "there"}]),
        ChatMessage(role="function", content="42", name="answer"),
        ChatMessage(role="assistant", content=None),
    ]
    assert template_messages(messages) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": ""},
    ]


def test_chat_request_becomes_a_generation_request() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [{"role": "developer", "content": "x"}],
            "max_completion_tokens": 5,
            "stop": "END",
            "logit_bias": {"7": 250, "-1": -3},
        }
    )
    gen = to_generation_request(req, default_max_tokens=256)
    assert gen.messages == [{"role": "system", "content": "x"}]
    assert gen.prompt is None
    assert (gen.max_tokens, gen.stop, gen.temperature, gen.top_p) == (5, ["END"], 1.0, 1.0)
    assert gen.logit_bias == {7: 100.0, -1: -3.0}


def test_completion_request_uses_the_default_token_limit() -> None:
    gen = completion_to_generation_request(
        CompletionRequest(model="m", prompt=["once"]), default_max_tokens=9
    )
    assert (gen.prompt, gen.messages, gen.max_tokens) == ("once", None, 9)


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"n": 2}, "n"), ({"logit_bias": {"x": 1}}, "logit_bias"), ({"tools": [{}]}, "tools")],
)
def test_unsupported_chat_options_are_400s_naming_the_param(
    extra: dict[str, object], param: str
) -> None:
    req = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}
    )
    with pytest.raises(InvalidRequestError) as info:
        to_generation_request(req, default_max_tokens=8)
    assert info.value.param == param
