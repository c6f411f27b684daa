"""A ``responses.create`` body, checked: what is in scope, with the new input as items.

Out of scope (tools, files, images, reasoning, ...) is a 400 naming the parameter.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from switchyard_common.errors import InvalidRequestError

ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
# Accepted and ignored: they change nothing for a text-only turn.
_IGNORED = frozenset({"user", "parallel_tool_calls", "service_tier", "safety_identifier",
                      "prompt_cache_key", "prompt_cache_retention", "stream_options"})  # fmt: skip
_KNOWN = frozenset({"model", "input", "instructions", "previous_response_id", "conversation",
                    "store", "metadata", "max_output_tokens", "temperature", "top_p",
                    "truncation", "stream", "tools", "tool_choice", "text", "include",
                    "reasoning", "background"}) | _IGNORED  # fmt: skip


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def unsupported(param: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{what} are not supported by this server ('{param}').",
        param=param,
        code="unsupported_parameter",
    )


@dataclass
class TurnRequest:
    model: str
    input_items: list[dict[str, Any]]
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | None = None
    store: bool = True
    metadata: dict[str, str] = field(default_factory=dict)
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    truncation: Literal["auto", "disabled"] = "disabled"
    stream: bool = False
    # Run later by a runner (see background.py): answered at once as ``queued``.
    background: bool = False

    @property
    def stateful(self) -> bool:
        """Needs the session service: reads earlier turns or stores this one."""
        return bool(self.store or self.previous_response_id or self.conversation)


def _text(role: str, text: str) -> dict[str, Any]:
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": "input_text", "text": text}


def _message(raw: Any, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"'{param}' must be an object.", param=param)
    kind = raw.get("type", "message")
    if kind != "message":
        raise unsupported(f"{param}.type", f"Input items of type {kind!r}")
    role = raw.get("role")
    if role not in ROLES:
        raise InvalidRequestError(
            f"'{param}.role' must be one of {', '.join(sorted(ROLES))}.", param=f"{param}.role"
        )
    content = raw.get("content")
    if isinstance(content, str):
        parts = [_text(role, content)]
    elif isinstance(content, list) and content:
        parts = []
        for i, part in enumerate(content):
            where = f"{param}.content[{i}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in _TEXT_PARTS:
                raise unsupported(f"{where}.type", f"Content parts of type {kind!r}")
            if not isinstance(part.get("text"), str):
                raise InvalidRequestError(f"'{where}.text' must be a string.", param=where)
            parts.append(_text(role, part["text"]))
    else:
        raise InvalidRequestError(
            f"'{param}.content' must be a string or a list of text parts.",
            param=f"{param}.content",
        )
    return {"type": "message", "id": new_id("msg"), "status": "completed", "role": role,
            "content": parts}  # fmt: skip


def _input(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [_message({"role": "user", "content": raw}, "input")]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("'input' must be a string or a list of items.", param="input")
    return [_message(item, f"input[{i}]") for i, item in enumerate(raw)]


def _optional(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise InvalidRequestError(f"Invalid type for '{name}'.", param=name, code="invalid_type")
    return value


def _check_out_of_scope(body: dict[str, Any]) -> None:
    for name in body:
        if name not in _KNOWN:
            raise InvalidRequestError(
                f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter"
            )
    if body.get("tools"):
        raise unsupported("tools", "Tools")
    if body.get("tool_choice") not in (None, "none", "auto"):
        raise unsupported("tool_choice", "Tool choices")
    if body.get("reasoning") is not None:
        raise unsupported("reasoning", "Reasoning options")
    if body.get("include"):
        raise unsupported("include", "Included extras")
    if body.get("background") and body.get("stream"):
        raise unsupported("stream", "Streamed background responses")
    if body.get("background") and body.get("conversation"):
        raise unsupported("conversation", "Background responses in a conversation")
    if body.get("background") and body.get("store") is False:
        raise InvalidRequestError("A background response must be stored.", param="store")
    text_format = ((body.get("text") or {}).get("format") or {}).get("type", "text")
    if text_format != "text":
        raise unsupported("text.format", "Structured output formats")


def parse_turn(body: dict[str, Any]) -> TurnRequest:
    _check_out_of_scope(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("Missing required parameter: 'model'.", param="model",
                                  code="missing_required_parameter")  # fmt: skip
    if "input" not in body:
        raise InvalidRequestError("Missing required parameter: 'input'.", param="input",
                                  code="missing_required_parameter")  # fmt: skip
    conversation = body.get("conversation")
    if isinstance(conversation, dict):
        conversation = conversation.get("id")
    if conversation is not None and not isinstance(conversation, str):
        raise InvalidRequestError("'conversation' must be an id.", param="conversation")
    previous = _optional(body, "previous_response_id", str)
    if conversation and previous:
        raise InvalidRequestError(
            "Use either 'previous_response_id' or 'conversation', not both.",
            param="previous_response_id",
        )
    truncation: Literal["auto", "disabled"] = body.get("truncation") or "disabled"
    if truncation not in ("auto", "disabled"):
        raise InvalidRequestError("'truncation' must be 'auto' or 'disabled'.",
                                  param="truncation")  # fmt: skip
    max_output = _optional(body, "max_output_tokens", int)
    if max_output is not None and max_output < 1:
        raise InvalidRequestError("'max_output_tokens' must be at least 1.",
                                  param="max_output_tokens")  # fmt: skip
    metadata = _optional(body, "metadata", dict) or {}
    store = body.get("store")
    return TurnRequest(
        model=model,
        input_items=_input(body["input"]),
        instructions=_optional(body, "instructions", str),
        previous_response_id=previous,
        conversation=conversation,
        store=True if store is None else bool(store),
        metadata={str(k): str(v) for k, v in metadata.items()},
        max_output_tokens=max_output,
        temperature=_optional(body, "temperature", (int, float)),
        top_p=_optional(body, "top_p", (int, float)),
        truncation=truncation,
        stream=body.get("stream") is True,
        background=body.get("background") is True,
    )


def chat_message(item: dict[str, Any]) -> dict[str, str]:
    """A stored or new message item as a chat message (developer speaks as system)."""
    role = item.get("role", "user")
    text = "".join(part.get("text", "") for part in item.get("content", []))
    return {"role": "system" if role == "developer" else role, "content": text}
