"""Talking to an OpenAI-compatible engine over HTTP: errors, SSE parsing, its metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from switchyard_common.errors import (
    InvalidRequestError,
    OverloadedError,
    ServiceUnavailableError,
    SwitchyardError,
    UpstreamError,
    UpstreamTimeoutError,
)


class EngineRequestError(InvalidRequestError):
    """The engine refused the request as invalid (4xx); its status and message are kept."""

    def __init__(self, status_code: int, message: str, *, param: str | None, code: str | None):
        super().__init__(message, param=param, code=code)
        self.status_code = status_code  # type: ignore[misc]


def transport_error(exc: httpx.HTTPError) -> SwitchyardError:
    """A failure to reach the engine, as the error the client should see."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(f"The engine did not answer in time ({type(exc).__name__}).")
    if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError):
        return ServiceUnavailableError(
            "The engine beside this worker is not reachable; retry shortly.",
            headers={"retry-after": "2"},
        )
    return UpstreamError(f"Talking to the engine failed: {type(exc).__name__}.")


def error_from_response(status: int, raw: bytes, headers: httpx.Headers) -> SwitchyardError:
    """Map an engine's error response to a typed error, keeping its message."""
    message, param, code = f"The engine answered HTTP {status}.", None, None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("detail") or message)
            param = err.get("param") if isinstance(err.get("param"), str) else None
            code = err.get("code") if isinstance(err.get("code"), str) else None
        elif isinstance(err, str):
            message = err
        elif "detail" in body:
            message = str(body["detail"])
    if status in (429, 503):
        retry = headers.get("retry-after", "1")
        return OverloadedError(
            f"The engine is overloaded: {message}",
            retry_after=float(retry) if retry.isdigit() else 1.0,
            status_code=status,
        )
    if 400 <= status < 500 and status not in (401, 403, 404):
        return EngineRequestError(status, message, param=param, code=code)
    # Auth and routing errors are this worker's misconfiguration, not the client's.
    return UpstreamError(f"The engine failed (HTTP {status}): {message}")


async def sse_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of an OpenAI SSE stream, up to ``data: [DONE]``."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments (keep-alive pings), event names
        data = line[5:].strip()
        if data == "[DONE]":
            return
        if not data:
            continue
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("The engine sent a malformed stream event.") from exc
        if isinstance(payload, dict) and "error" in payload and "choices" not in payload:
            err = payload["error"]
            message = err.get("message") if isinstance(err, dict) else str(err)
            raise UpstreamError(f"The engine failed mid-stream: {message}")
        if isinstance(payload, dict):
            yield payload


def sum_metric(text: str, name: str) -> float | None:
    """The sum of all samples of ``name`` in Prometheus text exposition; None if absent."""
    from prometheus_client.parser import text_string_to_metric_families

    total, found = 0.0, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                total += float(sample.value)
                found = True
    return total if found else None
