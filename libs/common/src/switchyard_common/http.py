"""The shared outbound HTTP client: pooled connections and explicit timeouts."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from switchyard_common.telemetry import inject_trace_context


@dataclass(frozen=True)
class HttpClientConfig:
    connect_timeout: float = 2.0
    read_timeout: float = 60.0
    write_timeout: float = 10.0
    pool_timeout: float = 2.0
    max_connections: int = 256
    max_keepalive_connections: int = 64
    keepalive_expiry: float = 30.0


def create_http_client(
    config: HttpClientConfig | None = None, *, base_url: str = ""
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for service-to-service calls; the caller's lifespan owns it."""
    cfg = config or HttpClientConfig()
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(
            connect=cfg.connect_timeout,
            read=cfg.read_timeout,
            write=cfg.write_timeout,
            pool=cfg.pool_timeout,
        ),
        limits=httpx.Limits(
            max_connections=cfg.max_connections,
            max_keepalive_connections=cfg.max_keepalive_connections,
            keepalive_expiry=cfg.keepalive_expiry,
        ),
        # Service-to-service calls never go through an environment proxy.
        trust_env=False,
        follow_redirects=False,
        # One request, one trace: every call carries the caller's traceparent.
        event_hooks={"request": [inject_trace_context]},
    )
