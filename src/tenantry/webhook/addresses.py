"""Where a webhook may go: public addresses only, checked on the address actually connected to.

A destination's host is resolved, and every address it resolves to must be public
(or inside `TENANTRY_WEBHOOK_ALLOWED_NETWORKS`); the connection is then made to one
of those checked addresses (tenantry.webhook.client), so a DNS answer that changes
between the check and the connect (rebinding) cannot reach an internal service.
IPv4 addresses carried inside IPv6 (mapped, NAT64, 6to4) are judged as the IPv4
address they carry.
"""

from __future__ import annotations

import asyncio
import fnmatch
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Protocol
from urllib.parse import urlsplit

from tenantry.config import Settings
from tenantry.errors import TenantryError

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# Never a webhook's destination, whatever `ipaddress.is_global` says of them (the
# cloud metadata addresses 169.254.169.254, 100.100.100.200 and fd00:ec2::254 are in
# the link-local, shared and unique-local ranges below).
BLOCKED: tuple[Network, ...] = tuple(
    ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
NAT64 = ip_network("64:ff9b::/96")


class WebhookUrlForbidden(TenantryError):
    status, code, title = 400, "WEBHOOK_URL_FORBIDDEN", "Webhooks may not be sent there"


class ForbiddenDestination(Exception):
    """An attempt's destination is refused; `error` is what its attempt row records."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error


def carried_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), else the address."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), without blocking the loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class DestinationPolicy:
    allowed_networks: Sequence[Network] = ()
    allowed_hosts: Sequence[str] = ()  # empty: any host
    https_only: bool = False

    @classmethod
    def of(cls, settings: Settings) -> DestinationPolicy:
        return cls(
            tuple(settings.webhook_allowed_networks),
            tuple(host.lower() for host in settings.webhook_allowed_hosts),
            https_only=settings.is_prod,
        )

    def address_allowed(self, address: Address) -> bool:
        if any(address in network for network in self.allowed_networks):
            return True
        judged = carried_ipv4(address)
        if any(judged in network for network in self.allowed_networks):
            return True
        return judged.is_global and not any(judged in network for network in BLOCKED)

    def host_allowed(self, host: str) -> bool:
        return not self.allowed_hosts or any(
            fnmatch.fnmatchcase(host.lower(), pattern) for pattern in self.allowed_hosts
        )

    def check_addresses(self, host: str, addresses: Sequence[str]) -> list[str]:
        """The addresses, when every one is allowed; else ForbiddenDestination."""
        if not addresses:
            raise ForbiddenDestination("dns_failed", f"{host} resolves to no address")
        for text in addresses:
            if not self.address_allowed(ip_address(text.split("%", 1)[0])):
                raise ForbiddenDestination(
                    "forbidden_address", f"{host} resolves to {text}, which is not public"
                )
        return list(addresses)

    def check_url(self, url: str) -> tuple[str, int]:
        """The host and port of an acceptable destination URL; else ForbiddenDestination."""
        parts = urlsplit(url)
        allowed = ("https",) if self.https_only else ("http", "https")
        if parts.scheme not in allowed:
            raise ForbiddenDestination("forbidden_scheme", f"only {' or '.join(allowed)} URLs")
        if parts.username or parts.password:
            raise ForbiddenDestination("forbidden_url", "a URL may not carry credentials")
        host = parts.hostname
        if not host:
            raise ForbiddenDestination("forbidden_url", "the URL names no host")
        if not self.host_allowed(host):
            raise ForbiddenDestination("forbidden_host", f"{host} is not an allowed host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ForbiddenDestination("forbidden_url", "the URL's port is not valid") from exc
        return host, port

    async def check_destination(self, url: str, resolver: Resolver) -> None:
        """What registration checks: the URL, then every address its host resolves to."""
        host, port = self.check_url(url)
        try:
            addresses = await asyncio.wait_for(resolver.resolve(host, port), timeout=5)
        except (OSError, TimeoutError) as exc:
            raise ForbiddenDestination("dns_failed", f"{host} does not resolve") from exc
        self.check_addresses(host, addresses)
