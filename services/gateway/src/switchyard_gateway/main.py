"""The gateway app: ``create_app()`` builds it; the lifespan owns clients, pool and stores."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from switchyard_common.app import create_service_app
from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_gateway import platform_events
from switchyard_gateway.api import (
    admin_keys,
    admin_usage,
    chat,
    completions,
    embeddings,
    models,
    webhook_endpoints,
)
from switchyard_gateway.breakers import STATE_VALUES, InstanceBreaker
from switchyard_gateway.cache import MemoryCache, RedisCache, ResponseCache
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.discovery.base import Discovery
from switchyard_gateway.discovery.static import StaticDiscovery
from switchyard_gateway.fast_routes import FastRouteContext
from switchyard_gateway.forwarding import Forwarder
from switchyard_gateway.handling import Gateway
from switchyard_gateway.keys import FileKeyRepository, KeyRepository, KeyStore, RedisKeyRepository
from switchyard_gateway.metrics import GatewayMetrics, HealthyInstances
from switchyard_gateway.policies import make_policy
from switchyard_gateway.pool import InstancePool
from switchyard_gateway.ratelimit import RateLimiter, make_storage
from switchyard_gateway.stateful import install_stateful
from switchyard_gateway.upstream import UpstreamClient
from switchyard_gateway.usage import TenantUsage

log = logging.getLogger(__name__)


def build_discovery(
    settings: GatewaySettings, registry: CollectorRegistry | None = None
) -> Discovery:
    """The configured discovery backend; its metrics go on ``registry`` (the app's)."""
    if settings.discovery == "consul":
        from switchyard_gateway.discovery.consul import ConsulDiscovery

        if not settings.consul.address:
            raise ValueError("discovery=consul needs SWITCHYARD_GATEWAY_CONSUL__ADDRESS")
        return ConsulDiscovery(
            settings.consul, settings.worker_service, settings.consul_watch, registry
        )
    if settings.discovery == "kubernetes":
        from switchyard_gateway.discovery.kubernetes import KubernetesDiscovery

        return KubernetesDiscovery(settings.worker_service, settings.kubernetes, registry)
    return StaticDiscovery(settings.static_workers)


def build_keystore(settings: GatewaySettings, redis: Any) -> KeyStore:
    repository: KeyRepository | None = None
    if redis is not None:
        repository = RedisKeyRepository(redis)
    elif settings.keys_file is not None:
        repository = FileKeyRepository(settings.keys_file)
    return KeyStore(
        repository,
        fixed_digests=[s.get_secret_value() for s in settings.api_key_hashes],
        admin_digests=[s.get_secret_value() for s in settings.admin_key_hashes],
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GatewaySettings = app.state.settings
    metrics = GatewayMetrics(app.state.registry)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    redis_async: Any = None
    redis_sync: Any = None
    if redis_url:
        import redis
        import redis.asyncio

        redis_async = redis.asyncio.from_url(redis_url)
        redis_sync = redis.Redis.from_url(redis_url, socket_timeout=0.5)
        log.info("sharing rate limits, breakers, keys and cache through Redis")
    client = create_http_client(
        HttpClientConfig(
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.first_byte_timeout_seconds,
            max_connections=settings.max_in_flight + 64,
            max_keepalive_connections=settings.max_in_flight,
        )
    )

    # The webhook service's relay and platform events (None without webhook_url).
    app.state.webhooks = webhooks = platform_events.webhook_relay(settings)
    events = platform_events.platform_events(settings, app.state.registry)
    app.state.events = events  # also the background responses' ends (see stateful.py)

    def on_breaker_change(instance_id: str, state: str) -> None:
        log.warning("circuit breaker changed", extra={"instance": instance_id, "state": state})
        metrics.breaker_state(instance_id).set(STATE_VALUES.get(state, 0))
        platform_events.circuit_changed(events, settings.instance_id, instance_id, state)

    def breaker_factory(instance_id: str) -> InstanceBreaker:
        metrics.breaker_state(instance_id).set(0)
        return InstanceBreaker(
            instance_id,
            fail_max=settings.breaker_fail_max,
            reset_seconds=settings.breaker_reset_seconds,
            redis=redis_sync,
            on_change=on_breaker_change,
        )

    pool = InstancePool(
        build_discovery(settings, app.state.registry),
        client,
        breaker_factory,
        probe_interval=settings.probe_interval_seconds,
        probe_timeout=settings.probe_timeout_seconds,
        per_instance_limit=settings.max_in_flight_per_instance,
        on_removed=metrics.breaker_state.remove,  # no label left behind by a gone instance
        on_health_change=partial(platform_events.health_changed, events, settings.instance_id),
    )
    # The hot path has its own lean HTTP/1.1 client (see upstream.py); probes use httpx.
    upstream = UpstreamClient(
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.first_byte_timeout_seconds,
        max_idle=settings.max_in_flight_per_instance,
    )
    forwarder = Forwarder(
        pool,
        make_policy(settings.routing_policy, settings.max_in_flight_per_instance),
        upstream,
        total_timeout=settings.total_timeout_seconds,
        max_attempts=settings.max_attempts,
        backoff_base=settings.retry_backoff_base_seconds,
        backoff_max=settings.retry_backoff_max_seconds,
        retry_deadline=settings.retry_deadline_seconds,
        aliases=settings.model_aliases,
        fallbacks=settings.model_fallbacks,
    )
    cache: ResponseCache = (
        RedisCache(redis_async, settings.cache_ttl_seconds)
        if redis_async is not None
        else MemoryCache(settings.cache_ttl_seconds, settings.cache_max_entries)
    )
    keys = build_keystore(settings, redis_async)
    await keys.refresh()
    app.state.keys = keys
    app.state.pool = pool
    app.state.registry.register(HealthyInstances(pool.models, pool.serving))
    limiter = RateLimiter(make_storage(redis_url), settings.default_rpm, settings.default_tpm)
    app.state.usage = usage = TenantUsage(tenant_label=settings.usage_tenant_label)
    app.state.registry.register(usage)
    app.state.gateway = Gateway(
        forwarder,
        limiter,
        cache,
        metrics,
        keys,
        max_in_flight=settings.max_in_flight,
        session_header=settings.session_header.lower(),
        max_body_bytes=settings.max_body_bytes,
        usage=usage,
    )
    await pool.start()
    try:
        yield
    finally:
        await pool.stop()
        await limiter.aclose()
        await client.aclose()
        await upstream.close()
        await platform_events.close(webhooks, events)
        if redis_async is not None:
            await redis_async.aclose()
            redis_sync.close()


# The proxy routes: served ahead of FastAPI's routing, inside the request context.
FAST_ROUTES = {
    "/v1/chat/completions": chat.create_chat_completion,
    "/v1/completions": completions.create_completion,
    "/v1/embeddings": embeddings.create_embedding,
}


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    app = create_service_app(
        settings,
        lifespan=lifespan,
        routers=[models.router, admin_keys.router, admin_usage.router, webhook_endpoints.router],
        request_context=partial(FastRouteContext, routes=FAST_ROUTES),
        api_docs=False,  # the public API: nothing served without a key but health and metrics
    )
    install_stateful(app)  # /v1/conversations and /v1/responses (see stateful.py)
    return app
