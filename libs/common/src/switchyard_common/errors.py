"""Typed errors and the one handler that maps them to OpenAI's error JSON.

Every error body has the shape ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger(__name__)


class SwitchyardError(Exception):
    """Base of every error that becomes an HTTP response."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, self.param, self.code)

    def to_response(self) -> Response:
        return json_response(self.body(), self.status_code, self.headers)


class InvalidRequestError(SwitchyardError):
    status_code = 400
    error_type = "invalid_request_error"


class RequestTooLargeError(SwitchyardError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class AuthenticationError(SwitchyardError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(SwitchyardError):
    status_code = 403
    error_type = "invalid_request_error"
    default_code = "permission_denied"


class NotFoundError(SwitchyardError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist or you do not have access to it.", param="model"
        )


class RateLimitError(SwitchyardError):
    status_code = 429
    error_type = "rate_limit_exceeded"
    default_code = "rate_limit_exceeded"


class OverloadedError(SwitchyardError):
    """Capacity is exhausted: answer fast with ``Retry-After`` instead of queueing."""

    status_code = 503
    error_type = "server_error"
    default_code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0, status_code: int = 503) -> None:
        super().__init__(message, headers={"retry-after": str(max(1, round(retry_after)))})
        self.status_code = status_code  # type: ignore[misc]


class UpstreamError(SwitchyardError):
    status_code = 502
    error_type = "server_error"
    default_code = "upstream_error"


class ServiceUnavailableError(SwitchyardError):
    status_code = 503
    error_type = "server_error"
    default_code = "service_unavailable"


class UpstreamTimeoutError(SwitchyardError):
    status_code = 504
    error_type = "server_error"
    default_code = "upstream_timeout"


class InternalError(SwitchyardError):
    status_code = 500
    error_type = "server_error"
    default_code = "internal_error"


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response serialized with orjson, with no model round-trip."""
    return Response(
        orjson.dumps(body), status_code=status_code, headers=headers, media_type="application/json"
    )


def validation_error_from(errors: Sequence[Any]) -> InvalidRequestError:
    """Turn pydantic/FastAPI validation errors into one OpenAI-style 400."""
    if not errors:
        return InvalidRequestError("Invalid request body.", code="invalid_request")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]  # where it was, not part of the parameter's name
    param = ".".join(loc) or None
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        detail = ctx.get("error", "")
        return InvalidRequestError(
            f"We could not parse the JSON body of your request. ({detail})".replace(" ()", ""),
            code="invalid_json",
        )
    if kind == "missing" and param is None:
        return InvalidRequestError(
            "The request body is missing: send a JSON object.", code="missing_required_parameter"
        )
    if kind == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    msg = str(first.get("msg", "Invalid value"))
    where = f" for '{param}'" if param else ""
    return InvalidRequestError(f"Invalid value{where}: {msg}.", param=param, code="invalid_value")


def response_for(exc: Exception) -> Response:
    """OpenAI error JSON for anything a request raised; unexpected errors are logged."""
    if isinstance(exc, SwitchyardError):
        if exc.status_code >= 500:
            log.warning("request failed: %s", exc.message, extra={"error_code": exc.code})
        return exc.to_response()
    log.error("unhandled error", exc_info=exc)
    return InternalError("The server had an error while processing your request.").to_response()


def install_error_handlers(app: FastAPI) -> None:
    """Map every error a request can raise to OpenAI's error JSON."""

    async def on_switchyard_error(_: Request, exc: Exception) -> Response:
        return response_for(exc)

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_error_from(exc.errors()).to_response()

    async def on_http_exception(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        if status == 404:
            body = error_body("Not found.", "invalid_request_error", code="not_found")
        elif status == 405:
            body = error_body(
                "Method not allowed.", "invalid_request_error", code="method_not_allowed"
            )
        else:
            kind = "invalid_request_error" if status < 500 else "server_error"
            body = error_body(str(exc.detail), kind)
        return json_response(body, status, exc.headers)

    async def on_unhandled(_: Request, exc: Exception) -> Response:
        return response_for(exc)

    app.add_exception_handler(SwitchyardError, on_switchyard_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unhandled)
