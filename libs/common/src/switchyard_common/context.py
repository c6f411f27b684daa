"""Per-request context shared by logging, errors and outbound HTTP calls."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("switchyard_request_id", default=None)

REQUEST_ID_HEADER = "x-request-id"
