"""Bookkeeping over an engine's OpenAI responses: usage, finish reasons, model names.

Engines that stream no usage (llama_cpp.server) are counted one token per output chunk, and
the client still gets the usage chunk it asked for.
"""

from __future__ import annotations

from typing import Any

from switchyard_model_worker.backends.base import FinishReason, GenerationStats, RelayChunk

FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class StreamAccounting:
    """Follows one relayed stream chunk by chunk, keeping ``stats`` current."""

    def __init__(self, model_name: str, client_wants_usage: bool, stats: GenerationStats) -> None:
        self.model_name = model_name
        self.client_wants_usage = client_wants_usage
        self.stats = stats
        self.saw_usage = False
        self._template: dict[str, Any] = {}

    def take(self, payload: dict[str, Any]) -> RelayChunk | None:
        """The chunk to send on (relabelled with our model name), or None to drop it."""
        payload["model"] = self.model_name
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.saw_usage = True
            take_usage(usage, self.stats)
        choices = payload.get("choices") or []
        output = any(has_output(c) for c in choices)
        if output and not self.saw_usage:
            self.stats.completion_tokens += 1  # one token per chunk until usage comes
        for choice in choices:
            if choice.get("finish_reason"):
                self.stats.finish_reason = FINISH.get(choice["finish_reason"], "stop")
        if not self._template:
            self._template = {k: payload.get(k) for k in ("id", "object", "created")}
        if not self.client_wants_usage:
            if not choices:
                return None  # the usage-only chunk the client did not ask for
            payload.pop("usage", None)
        return RelayChunk(payload, output)

    def usage_chunk(self) -> RelayChunk | None:
        """The usage chunk to add at the end, when the client asked and the engine sent none."""
        if not self.client_wants_usage or self.saw_usage:
            return None
        prompt, completion = self.stats.prompt_tokens, self.stats.completion_tokens
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        payload = {**self._template, "model": self.model_name, "choices": [], "usage": usage}
        return RelayChunk(payload, False)


def account_whole(payload: dict[str, Any], model_name: str, stats: GenerationStats) -> None:
    """Relabel a whole response and take its usage and finish reason."""
    payload["model"] = model_name
    if isinstance(payload.get("usage"), dict):
        take_usage(payload["usage"], stats)
    for choice in payload.get("choices") or []:
        stats.finish_reason = FINISH.get(choice.get("finish_reason") or "stop", "stop")
    if payload.get("object") == "list":  # embeddings
        stats.finish_reason = "stop"


def take_usage(usage: dict[str, Any], stats: GenerationStats) -> None:
    stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    stats.completion_tokens = int(usage.get("completion_tokens") or 0)


def message_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def has_output(choice: dict[str, Any]) -> bool:
    delta = choice.get("delta")
    if isinstance(delta, dict):
        return bool(delta.get("content") or delta.get("tool_calls") or delta.get("function_call"))
    return bool(choice.get("text"))
