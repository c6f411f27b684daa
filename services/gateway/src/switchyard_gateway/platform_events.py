"""The gateway's side of the webhook service: the relay for ``/v1/webhook_endpoints`` and the
publisher of platform events (``switchyard.worker.ready`` / ``unhealthy`` and
``switchyard.circuit.opened`` / ``closed``), both present only when ``webhook_url`` is set.

Each gateway replica reports what it sees: with several replicas an operator's endpoint gets
one event per replica, each naming the replica in ``data.gateway``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from switchyard_common.webhook_publisher import WebhookPublisher
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.pool import InstanceState
from switchyard_gateway.webhook_relay import WebhookRelay

CIRCUIT_EVENTS = {"open": "switchyard.circuit.opened", "closed": "switchyard.circuit.closed"}


def _token(settings: GatewaySettings) -> str | None:
    return settings.webhook_token.get_secret_value() if settings.webhook_token else None


def webhook_relay(settings: GatewaySettings) -> WebhookRelay | None:
    if not settings.webhook_url:
        return None
    return WebhookRelay(settings.webhook_url, _token(settings))


def platform_events(
    settings: GatewaySettings, registry: CollectorRegistry
) -> WebhookPublisher | None:
    """A started publisher of platform events (for the operators' tenant), or None."""
    if not settings.webhook_url:
        return None
    publisher = WebhookPublisher(
        settings.webhook_url, registry, service="gateway", token=_token(settings)
    )
    publisher.start()
    return publisher


def circuit_changed(
    events: WebhookPublisher | None, gateway: str, instance_id: str, state: str
) -> None:
    """Publish a breaker opening or closing (half-open trials are not events)."""
    if events is not None and state in CIRCUIT_EVENTS:
        events.publish(CIRCUIT_EVENTS[state], {"instance": instance_id, "gateway": gateway})


def health_changed(
    events: WebhookPublisher | None, gateway: str, state: InstanceState, reason: str | None
) -> None:
    """Publish an instance turning ready, or unhealthy (``reason``: probe_failed, not_ready)."""
    if events is None:
        return
    data = {"instance": state.instance.id, "models": sorted(state.models), "gateway": gateway}
    if reason is None:
        events.publish("switchyard.worker.ready", data)
    else:
        events.publish("switchyard.worker.unhealthy", {**data, "reason": reason})


async def close(relay: WebhookRelay | None, events: WebhookPublisher | None) -> None:
    if events is not None:
        await events.aclose()
    if relay is not None:
        await relay.aclose()
