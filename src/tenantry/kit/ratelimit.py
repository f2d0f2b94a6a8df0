"""Rate limits with the `limits` library: in process memory, or in Redis shared by every process.

Sliding-window counters: cheap (two counters per key) and without the burst a
fixed window allows at its edge. Responses carry the IETF `RateLimit-Policy`
and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from ipaddress import IPv4Network, IPv6Network

import structlog
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from tenantry.errors import RateLimited
from tenantry.metrics import RATE_LIMIT_REJECTIONS
from tenantry.state import state_of

log = structlog.get_logger(__name__)


@cache
def _parse(rate: str) -> RateLimitItem:
    """Rates are settings read on every request: parse each once."""
    return parse(rate)


@dataclass(frozen=True)
class Limit:
    name: str  # the policy name in headers and metrics, e.g. "signup-ip"
    rate: RateLimitItem

    @classmethod
    def of(cls, name: str, rate: str) -> Limit:
        return cls(name, _parse(rate))

    @property
    def window_s(self) -> int:
        return int(self.rate.get_expiry())


@dataclass(frozen=True)
class Decision:
    limit: Limit
    allowed: bool
    remaining: int
    reset_s: int


SWEEP_EVERY_S = 10.0


class SweptMemoryStorage(MemoryStorage):
    """`limits`' in-process storage, sweeping less often.

    The library schedules a sweep over every key after every hit: O(keys) per request,
    which made each signup (new address, email and domain: new keys) dearer than the
    last. A counter expires when it is read anyway; the sweep only frees memory, so it
    runs at most every `SWEEP_EVERY_S`.
    """

    _last_sweep = float("-inf")

    async def _MemoryStorage__schedule_expiry(self) -> None:  # the library's private hook
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_EVERY_S:
            self._last_sweep = now
            await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


class RateLimiter:
    def __init__(self, redis_url: str | None) -> None:
        storage: Storage = (
            RedisStorage(f"async+{redis_url}", implementation="redispy")
            if redis_url
            else SweptMemoryStorage()
        )
        self.shared = redis_url is not None
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, limit: Limit, key: str) -> Decision:
        allowed = await self._limiter.hit(limit.rate, limit.name, key)
        stats = await self._limiter.get_window_stats(limit.rate, limit.name, key)
        reset_s = max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(limit, allowed, max(0, stats.remaining), reset_s)

    async def spent(self, limit: Limit, key: str) -> int | None:
        """Seconds until `key` may try again if its `limit` is used up (no hit), else None."""
        if await self._limiter.test(limit.rate, limit.name, key):
            return None
        stats = await self._limiter.get_window_stats(limit.rate, limit.name, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def enforce(self, limits: list[tuple[Limit, str]], **context: str) -> dict[str, str]:
        """Hit each `(limit, key)` in turn; raise RATE_LIMITED at the first refusal.

        Returns the rate-limit headers for the response.
        """
        decisions = []
        policies = [limit for limit, _ in limits]
        for limit, key in limits:
            decision = await self.hit(limit, key)
            decisions.append(decision)
            if not decision.allowed:
                RATE_LIMIT_REJECTIONS.labels(limit.name).inc()
                log.warning("rate_limited", limiter=limit.name, **context)
                raise RateLimited(
                    f"Too many requests ({limit.name}); retry in {decision.reset_s} s",
                    headers={
                        "Retry-After": str(decision.reset_s),
                        **headers_for(decisions, policies),
                    },
                )
        return headers_for(decisions, policies)


def limiter_of(request: Request) -> RateLimiter:
    limiter: RateLimiter = state_of(request).rate_limiter
    return limiter


def request_ip(request: Request) -> str:
    """The client address as the deployment's trusted proxies report it."""
    return client_ip(request, state_of(request).settings.trusted_proxies)


def headers_for(decisions: list[Decision], limits: list[Limit]) -> dict[str, str]:
    """`RateLimit-Policy` for every limit, `RateLimit` for the closest to refusing."""
    policy = ", ".join(
        f'"{limit.name}";q={limit.rate.amount};w={limit.window_s}' for limit in limits
    )
    tightest = min(decisions, key=lambda d: d.remaining)
    current = f'"{tightest.limit.name}";r={tightest.remaining};t={tightest.reset_s}'
    return {"RateLimit-Policy": policy, "RateLimit": current}


def client_ip(request: Request, trusted_proxies: Sequence[IPv4Network | IPv6Network]) -> str:
    """The peer address; behind a trusted proxy, the nearest untrusted X-Forwarded-For hop."""
    peer = request.client.host if request.client else "unknown"
    if not _trusted(peer, trusted_proxies):
        return peer
    hops = [
        hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()
    ]
    for hop in reversed(hops):
        if _is_ip(hop) and not _trusted(hop, trusted_proxies):
            return hop
    return peer


def _trusted(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
