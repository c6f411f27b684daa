"""One HTTP attempt to a webhook target: SSRF-checked, pinned to the checked address, no
redirects, a timeout, and at most ``max_response_bytes`` of the answer read."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from switchyard_webhook.ssrf import TargetPolicy, TargetRefusedError

USER_AGENT = "Switchyard-Webhooks/1.0"


@dataclass(frozen=True)
class Attempt:
    """What one attempt got: a status code, or the error that stopped it."""

    status_code: int | None
    latency: float
    error: str | None = None
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender:
    """Sends signed bodies; the lifespan owns it (``start``/``close``)."""

    def __init__(self, policy: TargetPolicy, max_response_bytes: int) -> None:
        self.policy = policy
        self.max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, use_dns_cache=False)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,  # noqa: ASYNC109
    ) -> Attempt:
        assert self._session is not None, "Sender.start() first"
        started = time.perf_counter()
        try:
            addresses = await self.policy.check(url)
        except TargetRefusedError as exc:
            return Attempt(None, 0.0, f"refused: {exc.message}", refused=True)
        parts = urlsplit(url)
        host = parts.hostname or ""
        # Connect to the address just checked (a second lookup could answer differently);
        # the Host header and TLS name stay the URL's.
        target = URL(url).with_host(addresses[0])
        send_headers = {
            **headers,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": parts.netloc.rsplit("@", 1)[-1],
        }
        try:
            async with self._session.post(
                target,
                data=body,
                headers=send_headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
                server_hostname=host if parts.scheme == "https" else None,
            ) as response:
                if self.max_response_bytes:
                    await response.content.read(self.max_response_bytes)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            latency = time.perf_counter() - started
            return Attempt(None, latency, f"{type(exc).__name__}: {exc}"[:500])
        return Attempt(status, time.perf_counter() - started)
