"""The gateway app: ``create_app()`` builds it; the lifespan owns clients and the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from switchyard_common.app import create_service_app
from switchyard_common.discovery import Discovery, StaticDiscovery
from switchyard_common.http import HttpClientConfig, create_http_client
from switchyard_gateway.api import chat, models
from switchyard_gateway.auth import KeyStore, read_key_file
from switchyard_gateway.config import GatewaySettings
from switchyard_gateway.policies import make_policy
from switchyard_gateway.pool import InstancePool
from switchyard_gateway.proxy import Forwarder


def build_discovery(
    settings: GatewaySettings, registry: CollectorRegistry | None = None
) -> Discovery:
    """The configured discovery backend; its metrics go on ``registry`` (the app's)."""
    if settings.discovery == "consul":
        from switchyard_common.consul_discovery import ConsulDiscovery

        if not settings.consul.address:
            raise ValueError("discovery=consul needs SWITCHYARD_GATEWAY_CONSUL__ADDRESS")
        return ConsulDiscovery(
            settings.consul, settings.worker_service, settings.consul_watch, registry
        )
    if settings.discovery == "kubernetes":
        from switchyard_common.kubernetes_discovery import KubernetesDiscovery

        return KubernetesDiscovery(settings.worker_service, settings.kubernetes, registry)
    return StaticDiscovery(settings.static_workers)


def build_keystore(settings: GatewaySettings) -> KeyStore:
    digests = [s.get_secret_value() for s in settings.api_key_hashes]
    if settings.api_keys_file is not None:
        digests += read_key_file(settings.api_keys_file)
    return KeyStore(digests)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GatewaySettings = app.state.settings
    client = create_http_client(
        HttpClientConfig(
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.first_byte_timeout_seconds,
        )
    )
    pool = InstancePool(
        build_discovery(settings, app.state.registry),
        client,
        probe_interval=settings.probe_interval_seconds,
        probe_timeout=settings.probe_timeout_seconds,
    )
    app.state.keys = build_keystore(settings)
    app.state.pool = pool
    app.state.forwarder = Forwarder(
        pool,
        make_policy(settings.routing_policy),
        client,
        timeout=httpx.Timeout(
            connect=settings.connect_timeout_seconds,
            read=settings.first_byte_timeout_seconds,
            write=settings.connect_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        ),
        total_timeout=settings.total_timeout_seconds,
        max_attempts=settings.max_attempts,
    )
    await pool.start()
    try:
        yield
    finally:
        await pool.stop()
        await client.aclose()


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    return create_service_app(settings, lifespan=lifespan, routers=[chat.router, models.router])
