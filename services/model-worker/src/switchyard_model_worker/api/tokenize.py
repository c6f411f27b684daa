"""POST /tokenize: count tokens with the model's own tokenizer (for context budgets).

The request and response follow vLLM's ``/tokenize``: ``{"prompt": ...}`` (or ``"text"``)
counts raw text; ``{"messages": [...]}`` counts chat messages after the chat template,
including the assistant prompt that generation starts from.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from switchyard_common.errors import InvalidRequestError
from switchyard_model_worker.api.deps import RunnerDep
from switchyard_model_worker.api.tracking import counted
from switchyard_model_worker.backends.base import UnsupportedError
from switchyard_model_worker.generation_requests import template_messages
from switchyard_model_worker.openai_requests import ChatMessage

router = APIRouter(tags=["tokenize"])


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | None = None
    text: str | None = None
    messages: list[ChatMessage] | None = Field(default=None, min_length=1)
    return_tokens: bool = False


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, runner: RunnerDep) -> dict[str, Any]:
    with counted(runner, "tokenize"):
        runner.check_model(body.model)
        text = body.prompt if body.prompt is not None else body.text
        if (text is None) == (body.messages is None):
            raise InvalidRequestError(
                "Send exactly one of 'prompt' (or 'text') and 'messages'.",
                param="messages" if body.messages is not None else "prompt",
                code="invalid_value",
            )
        messages = None if body.messages is None else template_messages(body.messages)
        try:
            counted_tokens = await runner.backend.count_tokens(text=text, messages=messages)
        except UnsupportedError as exc:
            raise InvalidRequestError(str(exc), code="unsupported_endpoint") from exc
        result: dict[str, Any] = {
            "model": runner.model_name,
            "count": counted_tokens.count,
            "max_model_len": runner.backend.context_length(),
        }
        if body.return_tokens:
            result["tokens"] = counted_tokens.tokens
        return result
