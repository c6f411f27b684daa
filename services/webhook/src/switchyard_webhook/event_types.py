"""The event types endpoints may subscribe to: OpenAI's, and Switchyard's platform events."""

from __future__ import annotations

from switchyard_common.errors import InvalidRequestError

OPENAI_EVENT_TYPES = (
    "batch.completed",
    "batch.failed",
    "batch.expired",
    "batch.cancelled",
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
    "eval.run.succeeded",
    "eval.run.failed",
    "eval.run.canceled",
    "fine_tuning.job.succeeded",
    "fine_tuning.job.failed",
    "fine_tuning.job.cancelled",
    "realtime.call.incoming",
    "video.completed",
    "video.failed",
)
ENDPOINT_DISABLED = "switchyard.endpoint.disabled"
SWITCHYARD_EVENT_TYPES = (
    "switchyard.worker.ready",
    "switchyard.worker.unhealthy",
    "switchyard.circuit.opened",
    "switchyard.circuit.closed",
    ENDPOINT_DISABLED,
)
EVENT_TYPES = OPENAI_EVENT_TYPES + SWITCHYARD_EVENT_TYPES
_KNOWN = frozenset(EVENT_TYPES)


def check_event_type(event_type: str, param: str = "event_type") -> str:
    if event_type not in _KNOWN:
        raise InvalidRequestError(
            f"Unknown event type {event_type!r}; GET /v1/webhook_event_types lists them.",
            param=param,
            code="invalid_value",
        )
    return event_type


def check_event_types(event_types: list[str]) -> list[str]:
    if not event_types:
        raise InvalidRequestError(
            "event_types must name at least one event type.",
            param="event_types",
            code="invalid_value",
        )
    return list(dict.fromkeys(check_event_type(t, "event_types") for t in event_types))
