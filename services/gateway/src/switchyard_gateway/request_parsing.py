"""An API request's body: read it within the size limit, parse it, check what routing needs.

The hot path never builds pydantic models: the body is parsed once with orjson, and
forwarded as the original bytes.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from switchyard_common.disconnect import ClientDisconnectedError
from switchyard_common.errors import InvalidRequestError, RequestTooLargeError


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, straight from ``receive``; 413 if it is longer than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnectedError("Client disconnected.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_body(raw: bytes, required: tuple[str, ...]) -> dict[str, Any]:
    """Parse a JSON object body and check the fields routing needs; OpenAI-style 400s."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"We could not parse the JSON body of your request. ({exc})", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
    for name in required:
        if name not in body:
            raise InvalidRequestError(
                f"Missing required parameter: '{name}'.",
                param=name,
                code="missing_required_parameter",
            )
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequestError("'model' must be a non-empty string.", param="model")
    return body
