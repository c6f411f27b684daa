"""Conversation items as clients send them, checked and stored in the SDK's ``Message`` shape.

Only message items with text content are in scope; tools, files, images and reasoning items
answer 400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from switchyard_common.errors import InvalidRequestError
from switchyard_session.ids import new_id

ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
MAX_METADATA_KEYS = 16


def text_part(role: str, text: str) -> dict[str, Any]:
    """One text content part, typed as the SDK expects for the role."""
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": "input_text", "text": text}


def _content(role: str, content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [text_part(role, content)]
    if not isinstance(content, list) or not content:
        raise InvalidRequestError(
            f"'{param}' must be a string or a non-empty list of text parts.", param=param
        )
    parts = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _TEXT_PARTS:
            raise InvalidRequestError(
                f"Content of type {kind!r} is not supported at '{where}': only text is.",
                param=f"{where}.type",
                code="unsupported_content",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError(f"'{where}.text' must be a string.", param=f"{where}.text")
        parts.append(text_part(role, text))
    return parts


def message_item(raw: Any, param: str) -> dict[str, Any]:
    """A stored message item (with a new ``msg_…`` id) from one item a client sent."""
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"'{param}' must be an object.", param=param)
    kind = raw.get("type", "message")
    if kind != "message":
        raise InvalidRequestError(
            f"Items of type {kind!r} are not supported at '{param}': only messages are.",
            param=f"{param}.type",
            code="unsupported_item_type",
        )
    role = raw.get("role")
    if role not in ROLES:
        raise InvalidRequestError(
            f"'{param}.role' must be one of {', '.join(sorted(ROLES))}.", param=f"{param}.role"
        )
    return {
        "type": "message",
        "id": new_id("msg"),
        "status": "completed",
        "role": role,
        "content": _content(role, raw.get("content"), f"{param}.content"),
    }


def message_items(raw: Sequence[Any], param: str = "items") -> list[dict[str, Any]]:
    return [message_item(item, f"{param}[{i}]") for i, item in enumerate(raw)]


def check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """OpenAI's limits: at most 16 pairs, keys up to 64 characters, values up to 512."""
    metadata = metadata or {}
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequestError("'metadata' has more than 16 keys.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            raise InvalidRequestError(
                f"'metadata.{key[:64]}': keys are at most 64 characters, values 512.",
                param="metadata",
            )
    return metadata
