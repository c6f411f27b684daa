"""Server-Sent Events framing in OpenAI's streaming format."""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def sse_event(payload: Any) -> bytes:
    """One ``data:`` event holding ``payload`` as compact JSON."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"
