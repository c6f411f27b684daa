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
from switchyard_common.openai_schemas import ChatMessage
from switchyard_model_worker.api.deps import EngineDep
from switchyard_model_worker.api.tracking import counted
from switchyard_model_worker.backends.base import UnsupportedError
from switchyard_model_worker.chat import _ROLE_MAP

router = APIRouter(tags=["tokenize"])


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | None = None
    text: str | None = None
    messages: list[ChatMessage] | None = Field(default=None, min_length=1)
    return_tokens: bool = False


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, engine: EngineDep) -> dict[str, Any]:
    with counted(engine, "tokenize"):
        engine.check_model(body.model)
        text = body.prompt if body.prompt is not None else body.text
        if (text is None) == (body.messages is None):
            raise InvalidRequestError(
                "Send exactly one of 'prompt' (or 'text') and 'messages'.",
                param="messages" if body.messages is not None else "prompt",
                code="invalid_value",
            )
        messages = None
        if body.messages is not None:
            messages = [
                {"role": _ROLE_MAP.get(m.role, m.role), "content": m.text()} for m in body.messages
            ]
        try:
            counted_tokens = await engine.backend.count_tokens(text=text, messages=messages)
        except UnsupportedError as exc:
            raise InvalidRequestError(str(exc), code="unsupported_endpoint") from exc
        result: dict[str, Any] = {
            "model": engine.model_name,
            "count": counted_tokens.count,
            "max_model_len": engine.backend.context_length(),
        }
        if body.return_tokens:
            result["tokens"] = counted_tokens.tokens
        return result
