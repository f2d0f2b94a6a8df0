"""The HTTP client of deliveries: keep-alive connections per host, no redirects, and every
connection made to an address the destination policy checked at that moment.

httpcore (the transport under httpx) takes a network backend; ours resolves the host,
checks every address (tenantry.webhook.addresses) and connects to a checked one. TLS
still runs with the URL's host as SNI and for certificate checks, and the Host header
is the URL's, so pinning the address changes nothing the receiver sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ssl
import time
import typing
from dataclasses import dataclass

import httpcore

from tenantry.webhook.addresses import DestinationPolicy, ForbiddenDestination, Resolver

EXCERPT_BYTES = 1024
KEEPALIVE_S = 30.0


@dataclass(frozen=True)
class Answer:
    """What the receiver said: status, its Retry-After in seconds, the body's first KiB."""

    status: int
    retry_after_s: float | None
    excerpt: str


class DeliveryFailed(Exception):
    """No answer: `error` names why (timeout, connect_failed, connection_error, or a refusal
    of the destination policy such as forbidden_address)."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: DestinationPolicy, resolver: Resolver) -> None:
        self.policy = policy
        self.resolver = resolver
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not self.policy.host_allowed(host):
            raise ForbiddenDestination("forbidden_host", f"{host} is not an allowed host")
        addresses = self.policy.check_addresses(host, await self.resolver.resolve(host, port))
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        moment = email.utils.parsedate_to_datetime(value).timestamp()
        return max(0.0, moment - (time.time() if now is None else now))
    return None


class DeliveryClient:
    def __init__(
        self,
        policy: DestinationPolicy,
        resolver: Resolver,
        *,
        timeout_s: float,
        max_connections: int,
    ) -> None:
        self.timeout_s = timeout_s
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            keepalive_expiry=KEEPALIVE_S,
            network_backend=_PinnedBackend(policy, resolver),
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """One POST within the timeout; redirects are answers like any other status."""
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout_s)
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._pool.stream(
                    "POST",
                    url,
                    headers=list(headers.items()),
                    content=body,
                    extensions={"timeout": timeouts},
                ) as response:
                    excerpt = await _excerpt(response)
        except ForbiddenDestination as exc:
            raise DeliveryFailed(exc.error, str(exc)) from exc
        except (TimeoutError, httpcore.TimeoutException) as exc:
            raise DeliveryFailed("timeout", f"no answer within {self.timeout_s:g} s") from exc
        except httpcore.ConnectError as exc:
            raise DeliveryFailed("connect_failed", str(exc) or "connection refused") from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
            raise DeliveryFailed("connection_error", f"{type(exc).__name__}: {exc}") from exc
        answer_headers = {k.decode().lower(): v.decode("latin-1") for k, v in response.headers}
        return Answer(
            response.status, retry_after_seconds(answer_headers.get("retry-after")), excerpt
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


async def _excerpt(response: httpcore.Response) -> str:
    """The body's first KiB. A longer body is not read on: its connection is closed
    instead of kept alive, so a receiver cannot make us download megabytes."""
    taken = b""
    async for chunk in response.aiter_stream():
        taken += chunk
        if len(taken) > EXCERPT_BYTES:
            break
    return taken[:EXCERPT_BYTES].decode("utf-8", errors="replace")
