"""The semantic events of a streamed response, numbered in order (``sequence_number``); sent
as Server-Sent Events, or as WebSocket messages."""

from __future__ import annotations

from typing import Any

import orjson

from switchyard_gateway.responses.objects import TurnResponse, TurnResult, status_of

Event = dict[str, Any]


def sse(event: Event) -> bytes:
    """One event as Server-Sent Events: its type as the ``event:`` line, JSON as ``data:``."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class EventWriter:
    """Renders one response's events; each gets the next sequence number."""

    def __init__(self, response: TurnResponse) -> None:
        self.response = response
        self.sequence = 0

    def event(self, kind: str, **fields: Any) -> Event:
        payload = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return payload

    def _part(self, **fields: Any) -> dict[str, Any]:
        return {"item_id": self.response.message_id, "output_index": 0, "content_index": 0,
                **fields}  # fmt: skip

    def opening(self) -> list[Event]:
        """created, in_progress, output_item.added, content_part.added."""
        r = self.response
        empty = {"type": "output_text", "text": "", "annotations": []}
        return [
            self.event("response.created", response=r.body("in_progress")),
            self.event("response.in_progress", response=r.body("in_progress")),
            self.event("response.output_item.added", output_index=0,
                       item=r.output_message("", "in_progress")),
            self.event("response.content_part.added", **self._part(part=empty)),
        ]  # fmt: skip

    def delta(self, text: str) -> Event:
        return self.event("response.output_text.delta", **self._part(delta=text, logprobs=[]))

    def closing(self, result: TurnResult) -> tuple[list[Event], dict[str, Any]]:
        """output_text.done, content_part.done, output_item.done, then completed (or
        incomplete); also the final Response body."""
        r = self.response
        status = status_of(result)
        final = r.body(status, result)
        part = {"type": "output_text", "text": result.text, "annotations": []}
        terminal = "response.completed" if status == "completed" else "response.incomplete"
        return [
            self.event("response.output_text.done", **self._part(text=result.text, logprobs=[])),
            self.event("response.content_part.done", **self._part(part=part)),
            self.event("response.output_item.done", output_index=0,
                       item=r.output_message(result.text, status)),
            self.event(terminal, response=final),
        ], final  # fmt: skip

    def failed(self, message: str) -> Event:
        body = self.response.body("failed")
        body["error"] = {"code": "server_error", "message": message}
        return self.event("response.failed", response=body)
