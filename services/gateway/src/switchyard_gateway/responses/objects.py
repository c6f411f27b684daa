"""The Response object of one turn, in the SDK's shape, at each point of its life."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from switchyard_gateway.responses.request import TurnRequest, new_id


@dataclass
class TurnResult:
    """What the worker did: the text, why it stopped, the real token counts."""

    text: str = ""
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class TurnResponse:
    """One response's identity and settings; ``body()`` renders it at a given status."""

    turn: TurnRequest
    model: str
    id: str = field(default_factory=lambda: new_id("resp"))
    message_id: str = field(default_factory=lambda: new_id("msg"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def output_message(self, text: str, status: str) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }

    def body(self, status: str, result: TurnResult | None = None) -> dict[str, Any]:
        turn = self.turn
        finished = result is not None and status != "in_progress"
        output = []
        usage = None
        incomplete = None
        if finished and result is not None:
            output = [self.output_message(result.text, status)]
            usage = {
                "input_tokens": result.input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": result.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": result.input_tokens + result.output_tokens,
            }
            if status == "incomplete":
                incomplete = {"reason": "max_output_tokens"}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if finished else None,
            "status": status,
            "background": turn.background,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": turn.instructions,
            "max_output_tokens": turn.max_output_tokens,
            "metadata": turn.metadata,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": turn.previous_response_id,
            "conversation": {"id": turn.conversation} if turn.conversation else None,
            "reasoning": None,
            "store": turn.store,
            "temperature": turn.temperature if turn.temperature is not None else 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": turn.top_p if turn.top_p is not None else 1.0,
            "truncation": turn.truncation,
            "usage": usage,
            "user": None,
        }


def status_of(result: TurnResult) -> str:
    """``max_output_tokens`` (or the context) reached: incomplete; else completed."""
    return "incomplete" if result.finish_reason == "length" else "completed"
