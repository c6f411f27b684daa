"""The context window of a turn: instructions, earlier items and the new input, within the
model's context less ``max_output_tokens``, counted with the serving model's own tokenizer.

Each item's count is the worker's ``/tokenize`` of the item as a one-message chat, less the
chat template's fixed part (what a chat of no messages would count: the default system prompt,
the generation prompt), so a prompt's count is that fixed part plus its items' counts. The
fixed part is measured as ``2 * count([empty]) - count([empty, empty])``. Counts of stored
items are cached by the session service; the ones it lacks are computed here and written back.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

from switchyard_common.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ServiceUnavailableError,
)
from switchyard_gateway.pool import InstancePool
from switchyard_gateway.responses.request import TurnRequest, chat_message
from switchyard_gateway.session_client import SessionClient

_EMPTY = [{"role": "user", "content": ""}]


class Tokenizer:
    """Token counts from the workers serving a model; the template's fixed part and the
    context length are remembered per model."""

    def __init__(self, pool: InstancePool, http: httpx.AsyncClient) -> None:
        self.pool = pool
        self.http = http
        self._fixed: dict[str, int] = {}
        self.context_lengths: dict[str, int] = {}

    async def _count(self, model: str, messages: list[dict[str, str]]) -> int:
        serving = self.pool.serving(model)
        if not serving:
            if self.pool.knows(model):
                raise ServiceUnavailableError(
                    f"No instance of '{model}' can count tokens now; retry shortly.",
                    headers={"retry-after": "1"},
                )
            raise ModelNotFoundError(model)
        state = random.choice(serving)
        try:
            answer = await self.http.post(
                f"{state.instance.url}/tokenize", json={"model": model, "messages": messages}
            )
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                "Counting tokens failed; retry shortly.", headers={"retry-after": "1"}
            ) from exc
        body = answer.json()
        self.context_lengths[model] = int(body["max_model_len"])
        return int(body["count"])

    async def fixed(self, model: str) -> int:
        if model not in self._fixed:
            one, two = await asyncio.gather(
                self._count(model, _EMPTY), self._count(model, _EMPTY + _EMPTY)
            )
            self._fixed[model] = max(0, 2 * one - two)
        return self._fixed[model]

    async def item(self, model: str, message: dict[str, str]) -> int:
        return max(0, await self._count(model, [message]) - await self.fixed(model))

    async def context_length(self, model: str) -> int:
        if model not in self.context_lengths:
            await self.fixed(model)
        return self.context_lengths[model]


@dataclass
class Window:
    messages: list[dict[str, str]]
    # The new input items' counts, by item id, to cache with them.
    input_tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    # Routing affinity: the conversation, or the first response of the chain.
    affinity: str | None = None
    # Earlier items left out to fit the model's context (truncation='auto').
    dropped: int = 0
    # Token counts of earlier items this turn made (by the session's item ref), to cache.
    counts: dict[int, int] = field(default_factory=dict)


def _too_long(needed: int, available: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"This model's maximum context is {available} tokens for input, but the "
        f"conversation needs {needed}. Use truncation='auto' or shorten the input.",
        param="input",
        code="context_length_exceeded",
    )


async def build_window(
    turn: TurnRequest, model: str, tenant: str, sessions: SessionClient | None,
    tokenizer: Tokenizer,
) -> Window:  # fmt: skip
    """The chat messages for the turn; 400 ``context_length_exceeded`` when they cannot fit
    (with ``truncation='disabled'``, or when even the new input alone does not)."""
    new = [chat_message(item) for item in turn.input_items]
    system = [{"role": "system", "content": turn.instructions}] if turn.instructions else []
    if sessions is None or not (turn.conversation or turn.previous_response_id):
        return Window(system + new)  # nothing earlier: the worker checks the length itself
    counts = await asyncio.gather(*(tokenizer.item(model, m) for m in system + new))
    available = await tokenizer.context_length(model) - (turn.max_output_tokens or 0)
    budget = available - await tokenizer.fixed(model) - sum(counts)
    if budget < 0:
        raise _too_long(available - budget, available)
    context = await sessions.context(
        tenant, model, conversation=turn.conversation,
        previous_response_id=turn.previous_response_id, budget=budget,
    )  # fmt: skip
    entries: list[dict[str, Any]] = context["items"]
    missing = [e for e in entries if e["tokens"] is None]
    found = await asyncio.gather(*(tokenizer.item(model, chat_message(e["item"])) for e in missing))
    for entry, tokens in zip(missing, found, strict=True):
        entry["tokens"] = tokens
    kept = entries
    total = sum(e["tokens"] for e in entries)
    if total > budget or not context.get("complete", True):
        if turn.truncation == "disabled":
            raise _too_long(available - budget + total, available)
        kept = []
        for entry in reversed(entries):  # the newest that fit
            if entry["tokens"] > budget:
                break
            budget -= entry["tokens"]
            kept.append(entry)
        kept.reverse()
    history = [chat_message(e["item"]) for e in kept]
    ids = [item["id"] for item in turn.input_items]
    input_tokens = {i: {model: n} for i, n in zip(ids, counts[len(system) :], strict=True)}
    affinity = turn.conversation or context.get("root")
    counted = {e["ref"]: e["tokens"] for e in missing}
    return Window(system + history + new, input_tokens, affinity, len(entries) - len(kept), counted)
