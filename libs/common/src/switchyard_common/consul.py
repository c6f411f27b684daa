"""A thin, typed wrapper over py-consul's asyncio client: the calls Switchyard makes.

Every failure (agent unreachable, timeout, non-2xx answer) becomes ``ConsulUnavailableError``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import warnings
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import consul
import consul.aio

from switchyard_common.errors import ServiceUnavailableError
from switchyard_common.settings import ConsulSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class ConsulUnavailableError(ServiceUnavailableError):
    """The Consul agent did not answer, or answered with an error."""

    default_code = "consul_unavailable"


def go_duration(seconds: float) -> str:
    """Seconds as a duration Consul parses: ``"500ms"``, ``"5s"``."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclass(frozen=True)
class HealthEntry:
    """One entry of ``/v1/health/service/<name>``, reduced to what discovery needs."""

    service_id: str
    address: str
    port: int
    tags: tuple[str, ...]
    meta: dict[str, str]
    node: str


def _entry(raw: dict[str, Any]) -> HealthEntry:
    service = raw.get("Service") or {}
    node = raw.get("Node") or {}
    return HealthEntry(
        service_id=str(service["ID"]),
        # An empty service address means "the node's address" in Consul.
        address=str(service.get("Address") or node.get("Address") or ""),
        port=int(service.get("Port") or 0),
        tags=tuple(str(t) for t in service.get("Tags") or ()),
        meta={str(k): str(v) for k, v in (service.get("Meta") or {}).items()},
        node=str(node.get("Node") or ""),
    )


class ConsulClient:
    """Owns one py-consul client (one aiohttp session); create and close it in one event loop."""

    def __init__(self, settings: ConsulSettings) -> None:
        if not settings.address:
            raise ValueError("Consul address is not configured")
        parts = urlsplit(settings.address if "//" in settings.address else f"//{settings.address}")
        self.settings = settings
        self.timeout = settings.timeout_seconds
        cert: tuple[str, str] | str | None = None
        if settings.cert_file and settings.key_file:
            cert = (str(settings.cert_file), str(settings.key_file))
        elif settings.cert_file:
            cert = str(settings.cert_file)
        verify: bool | str = settings.verify
        if settings.verify and settings.ca_file:
            verify = str(settings.ca_file)
        token = settings.token.get_secret_value() if settings.token else None
        with warnings.catch_warnings():
            # py-consul passes aiohttp a deprecated argument; nothing for us to act on.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._client = self._connect(parts, token, verify, cert)
        # Settings are the only source of the token (py-consul would also read its own env).
        self._client.token = token

    def _connect(
        self, parts: Any, token: str | None, verify: bool | str, cert: tuple[str, str] | str | None
    ) -> consul.aio.Consul:
        settings = self.settings
        return consul.aio.Consul(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8501 if parts.scheme == "https" else 8500),
            scheme=parts.scheme or "http",
            token=token,
            dc=settings.datacenter,
            verify=verify,
            cert=cert,
        )

    async def close(self) -> None:
        await self._client.close()

    async def _call(self, what: str, call: Awaitable[T], seconds: float) -> T:
        try:
            return await asyncio.wait_for(call, seconds)
        except (TimeoutError, aiohttp.ClientError, consul.ConsulException, OSError) as exc:
            raise ConsulUnavailableError(f"Consul {what} failed: {exc!r}") from exc

    async def register(self, payload: dict[str, Any]) -> None:
        """``PUT /v1/agent/service/register`` with a full service definition."""
        check = payload.get("check")
        ok = await self._call(
            "register",
            self._client.agent.service.register(
                payload["name"],
                service_id=payload["id"],
                address=payload["address"],
                port=payload["port"],
                tags=payload["tags"],
                meta=payload["meta"],
                check=check,
                replace_existing_checks=True,
            ),
            self.timeout,
        )
        if not ok:
            raise ConsulUnavailableError("Consul refused the registration")

    async def deregister(self, service_id: str) -> bool:
        """``PUT /v1/agent/service/deregister/<id>``; False when the agent did not know it."""
        call = self._client.agent.service.deregister(service_id)
        return bool(await self._call("deregister", call, self.timeout))

    async def local_service_ids(self) -> set[str]:
        """The ids of services registered with this agent (``GET /v1/agent/services``)."""
        services = await self._call("list services", self._client.agent.services(), self.timeout)
        return set(services)

    async def healthy(
        self, service: str, *, index: int = 0, wait: float = 30.0, tag: str | None = None
    ) -> tuple[int, list[HealthEntry]]:
        """Passing instances of ``service``; blocks up to ``wait`` when ``index`` is given."""
        params: dict[str, Any] = {"passing": True}
        if tag:
            params["tag"] = tag
        timeout = self.timeout
        if index:
            params.update(index=index, wait=go_duration(wait))
            # Consul adds up to wait/16 of jitter before answering.
            timeout += wait + wait / 16
        new_index, raw = await self._call(
            "health query", self._client.health.service(service, **params), timeout
        )
        return int(new_index or 0), [_entry(r) for r in raw or ()]


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """Exponential backoff with full jitter: an endless iterator of delays in seconds."""
    delay = initial
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(maximum, delay * 2)
