"""SSRF guard for webhook targets: which URLs an endpoint may use, checked on every send.

A target is resolved and every address it resolves to is checked: addresses inside the
configured allow-list may be used (over HTTP too); anything else must be a public address
reached over HTTPS. Loopback, private, link-local, shared, reserved and cloud metadata
addresses are refused unless the allow-list names them. Resolution is injectable so tests
never depend on real DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from switchyard_common.errors import InvalidRequestError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses the host resolves to.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Instance metadata services, refused even where a broader range is allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class TargetRefusedError(InvalidRequestError):
    """The URL may not be used as a webhook target; the message says why."""

    default_code = "invalid_url"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="url")


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None when it is."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "a non-public address"
    return None


class TargetPolicy:
    """Checks webhook URLs against the allow-list; ``resolver`` is injectable."""

    def __init__(self, allow_cidrs: Iterable[str], resolver: Resolver = system_resolver) -> None:
        self.allowed: list[Network] = [ipaddress.ip_network(c, strict=False) for c in allow_cidrs]
        self.resolver = resolver

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed)

    async def check(self, url: str) -> list[str]:
        """The addresses ``url`` may be sent to; raises :class:`TargetRefusedError` if none."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetRefusedError("The url must be an absolute http(s) URL with a host.")
        if parts.username is not None or parts.password is not None:
            raise TargetRefusedError("The url must not carry credentials.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise TargetRefusedError("The url has an invalid port.") from exc
        host = parts.hostname
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise TargetRefusedError(f"The url's host {host!r} does not resolve.") from exc
        if not addresses:
            raise TargetRefusedError(f"The url's host {host!r} does not resolve.")
        all_allowed = True
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if self._allowed(ip) and ip not in METADATA_ADDRESSES:
                continue
            all_allowed = False
            kind = _kind(ip)
            if kind is not None:
                raise TargetRefusedError(
                    f"The url's host {host!r} resolves to {ip}, {kind}, "
                    "which webhook endpoints may not use."
                )
        if not all_allowed and parts.scheme != "https":
            raise TargetRefusedError("The url must use https.")
        return addresses
