"""OpenAI chat and text completion requests, turned into native generation requests."""

from __future__ import annotations

from typing import Any

from switchyard_common.errors import InvalidRequestError
from switchyard_model_worker.backends.base import GenerationRequest
from switchyard_model_worker.openai_requests import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    SamplingParams,
)

# OpenAI's newer roles, as the chat templates of open models know them.
_TEMPLATE_ROLES = {"developer": "system", "function": "tool"}


def template_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Chat messages as the model's chat template takes them: known roles, plain text."""
    return [{"role": _TEMPLATE_ROLES.get(m.role, m.role), "content": m.text()} for m in messages]


def _check_common(req: SamplingParams) -> dict[int, float]:
    if req.n not in (None, 1):
        raise InvalidRequestError("Only n=1 is supported.", param="n", code="unsupported_value")
    bias: dict[int, float] = {}
    for key, value in (req.logit_bias or {}).items():
        if not key.lstrip("-").isdigit():
            raise InvalidRequestError(
                f"Invalid logit_bias key '{key}': keys are token ids.", param="logit_bias"
            )
        bias[int(key)] = max(-100.0, min(100.0, value))
    return bias


def _sampling(req: SamplingParams, max_tokens: int, bias: dict[int, float]) -> dict[str, object]:
    return {
        "max_tokens": max_tokens,
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "stop": req.stop_list(),
        "seed": req.seed,
        "presence_penalty": req.presence_penalty or 0.0,
        "frequency_penalty": req.frequency_penalty or 0.0,
        "logit_bias": bias,
    }


def to_generation_request(req: ChatCompletionRequest, default_max_tokens: int) -> GenerationRequest:
    bias = _check_common(req)
    if req.tools:
        raise InvalidRequestError(
            "This model backend does not support tools; use the openai-compatible backend "
            "with an engine that does.",
            param="tools",
            code="unsupported_parameter",
        )
    if req.response_format and req.response_format.get("type", "text") != "text":
        raise InvalidRequestError(
            "This model backend does not support structured output (response_format); use "
            "the openai-compatible backend with an engine that does.",
            param="response_format",
            code="unsupported_parameter",
        )
    max_tokens = req.token_limit() or default_max_tokens
    messages = template_messages(req.messages)
    return GenerationRequest(messages=messages, **_sampling(req, max_tokens, bias))  # type: ignore[arg-type]


def completion_prompt(req: CompletionRequest) -> str:
    if isinstance(req.prompt, list):
        if len(req.prompt) != 1:
            raise InvalidRequestError(
                "Only one prompt per request is supported.",
                param="prompt",
                code="unsupported_value",
            )
        return req.prompt[0]
    return req.prompt


def completion_to_generation_request(
    req: CompletionRequest, default_max_tokens: int
) -> GenerationRequest:
    bias = _check_common(req)
    if req.suffix:
        raise InvalidRequestError(
            "suffix (fill-in-the-middle) is not supported by this backend.",
            param="suffix",
            code="unsupported_parameter",
        )
    max_tokens = req.max_tokens or default_max_tokens
    return GenerationRequest(prompt=completion_prompt(req), **_sampling(req, max_tokens, bias))  # type: ignore[arg-type]
