"""Forwarding requests to model-worker instances.

The hot path never builds pydantic models: the body is parsed once with orjson to find the
model and the stream flag, then forwarded as the original bytes. Streams are relayed chunk by
chunk as they arrive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.responses import Response, StreamingResponse

from switchyard_common.context import REQUEST_ID_HEADER, request_id_var
from switchyard_common.errors import (
    InternalError,
    InvalidRequestError,
    ModelNotFoundError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from switchyard_common.sse import SSE_HEADERS, sse_event
from switchyard_common.telemetry import inject_trace_headers
from switchyard_gateway.policies import RoutingPolicy
from switchyard_gateway.pool import InstancePool, InstanceState

log = logging.getLogger(__name__)

_PASS_RESPONSE_HEADERS = ("retry-after", "x-request-id")


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
    for field in required:
        if field not in body:
            raise InvalidRequestError(
                f"Missing required parameter: '{field}'.",
                param=field,
                code="missing_required_parameter",
            )
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequestError("'model' must be a non-empty string.", param="model")
    return body


class Forwarder:
    def __init__(
        self,
        pool: InstancePool,
        policy: RoutingPolicy,
        client: httpx.AsyncClient,
        *,
        timeout: httpx.Timeout,
        total_timeout: float,
        max_attempts: int,
    ) -> None:
        self.total_timeout = total_timeout
        self.pool = pool
        self.policy = policy
        self.client = client
        self.timeout = timeout
        self.max_attempts = max_attempts

    async def _candidates(self, model: str, key: str | None) -> list[InstanceState]:
        found = self.pool.candidates(model)
        if not found:
            # Maybe a worker just came up or changed models: look again before saying no.
            await self.pool.refresh_if_stale()
            found = self.pool.candidates(model)
        if not found:
            if any(model in s.models for s in self.pool.states()):
                raise ServiceUnavailableError(
                    f"No healthy instance is serving '{model}' right now; retry shortly.",
                    headers={"retry-after": "1"},
                )
            raise ModelNotFoundError(model)
        return self.policy.order(found, key)[: self.max_attempts]

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        request_id = request_id_var.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        inject_trace_headers(headers)
        return headers

    async def forward(self, path: str, raw: bytes, body: dict[str, Any]) -> Response:
        model: str = body["model"]
        user = body.get("user")
        targets = await self._candidates(model, user if isinstance(user, str) else None)
        stream = body.get("stream") is True
        headers = self._headers()
        last_error: Exception | None = None
        for state in targets:
            request = self.client.build_request(
                "POST", f"{state.instance.url}{path}", content=raw, headers=headers,
                timeout=self.timeout,
            )  # fmt: skip
            state.in_flight += 1
            try:
                upstream = await self.client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                # Nothing reached the client yet: try the next instance.
                state.in_flight -= 1
                state.healthy = False
                last_error = exc
                log.warning("upstream connect failed", extra={"instance": state.instance.url})
                continue
            except httpx.TimeoutException as exc:
                state.in_flight -= 1
                raise UpstreamTimeoutError("The model did not answer in time.") from exc
            except BaseException:
                state.in_flight -= 1
                raise
            if stream and upstream.status_code == 200:
                return StreamingResponse(
                    _relay(upstream, state), media_type="text/event-stream", headers=SSE_HEADERS
                )
            try:
                async with asyncio.timeout(self.total_timeout):
                    content = await upstream.aread()
            except (httpx.TimeoutException, TimeoutError) as exc:
                raise UpstreamTimeoutError("The model did not finish in time.") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError("The model connection failed mid-response.") from exc
            finally:
                state.in_flight -= 1
                await upstream.aclose()
            passed = {k: v for k in _PASS_RESPONSE_HEADERS if (v := upstream.headers.get(k))}
            return Response(
                content,
                status_code=upstream.status_code,
                media_type=upstream.headers.get("content-type", "application/json"),
                headers=passed,
            )
        raise ServiceUnavailableError(
            f"No instance serving '{model}' could be reached; retry shortly.",
            headers={"retry-after": "1"},
        ) from last_error


async def _relay(upstream: httpx.Response, state: InstanceState) -> AsyncIterator[bytes]:
    """Relay SSE bytes as received; a broken upstream ends with an SSE error event."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        log.warning("upstream stream broke", extra={"instance": state.instance.url})
        error = UpstreamError("The model connection broke mid-stream.")
        yield sse_event(error.body())
    except Exception:
        log.exception("stream relay failed")
        yield sse_event(InternalError("Stream relay failed.").body())
    finally:
        state.in_flight -= 1
        # Closing an unfinished stream drops the upstream connection, which tells the
        # worker to stop generating.
        await upstream.aclose()
