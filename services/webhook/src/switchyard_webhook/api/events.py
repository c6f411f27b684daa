"""POST /internal/v1/events: other services publish events into the outbox.

The answer (202) comes only once the event and its deliveries are committed. A publisher
retrying with the same ``id`` is acknowledged without a second copy.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from switchyard_common.internal_calls import require_internal_token
from switchyard_webhook.api.deps import (
    DbDep,
    DispatcherDep,
    NowDep,
    SettingsDep,
)
from switchyard_webhook.event_types import check_event_type
from switchyard_webhook.outbox import Published, publish

router = APIRouter(tags=["events"], dependencies=[Depends(require_internal_token)])


class PublishEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    data: dict[str, Any] = Field(default_factory=dict)
    # The tenant whose endpoints get it; unset: the operators' tenant (platform events).
    tenant: str | None = Field(default=None, min_length=1, max_length=255)
    # The publisher's own event id (evt_...), making retries idempotent.
    id: str | None = Field(default=None, pattern=r"^evt_[A-Za-z0-9_]{1,60}$")


@router.post("/internal/v1/events", status_code=202)
async def publish_event(
    request: Request,
    body: PublishEvent,
    db: DbDep,
    dispatcher: DispatcherDep,
    settings: SettingsDep,
    now: NowDep,
) -> dict[str, Any]:
    event_type = check_event_type(body.type, "type")
    tenant = body.tenant or settings.operator_tenant
    try:
        async with db.write() as conn:
            published = await publish(conn, tenant, event_type, body.data, now, body.id)
    except IntegrityError:
        if body.id is None:
            raise
        # The same id published twice at once: the other copy was stored.
        published = Published(body.id, 0, duplicate=True)
    if not published.duplicate:
        request.app.state.metrics.events.labels(event_type).inc()
    if dispatcher is not None and published.deliveries:
        dispatcher.wake()
    return {
        "id": published.event_id,
        "object": "event",
        "type": event_type,
        "deliveries": published.deliveries,
        "duplicate": published.duplicate,
    }
