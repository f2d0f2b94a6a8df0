"""Rate limits with the `limits` library: in process memory, or in Redis shared by every process.

Sliding-window counters: cheap (two counters per key) and without the burst a
fixed window allows at its edge. Responses carry the IETF `RateLimit-Policy`
and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers).

When Redis fails, limits fail over to process memory instead of failing the
request: signup and login stay up, each process counts on its own (so a limit
is at most the number of processes times its rate) until Redis answers again, and health says
`degraded` meanwhile.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from ipaddress import IPv4Network, IPv6Network
from typing import Any, TypeVar

import redis.asyncio as aioredis
import structlog
from fastapi import Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from tenantry.errors import RateLimited
from tenantry.metrics import (
    RATE_LIMIT_REJECTIONS,
    RATE_LIMIT_STORE_DEGRADED,
    RATE_LIMIT_STORE_FALLBACKS,
)
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


# How long limits stay in memory after Redis fails before Redis is tried again, and how
# long one Redis call may take: a limit check must not hold a request for a dead store.
REDIS_RETRY_S = 5.0
REDIS_TIMEOUT_S = 0.5

_Strategy = SlidingWindowCounterRateLimiter
T = TypeVar("T")


# Told of each refusal (the limit and the request's context), e.g. to keep it for the abuse report.
RefusalHook = Callable[[Limit, dict[str, str]], None]


class RateLimiter:
    def __init__(self, redis_url: str | None, on_refusal: RefusalHook | None = None) -> None:
        self.on_refusal = on_refusal
        self._redis_url = redis_url or ""
        self._memory = _Strategy(SweptMemoryStorage())
        self._redis = (
            _Strategy(
                RedisStorage(
                    f"async+{redis_url}",
                    implementation="redispy",
                    wrap_exceptions=True,
                    socket_timeout=REDIS_TIMEOUT_S,
                    socket_connect_timeout=REDIS_TIMEOUT_S,
                )
            )
            if redis_url
            else None
        )
        self._failed_at: float | None = None  # monotonic time of the last Redis failure
        self._outage_since: float | None = None  # wall time the current outage began

    def status(self) -> dict[str, Any]:
        """The health check's view: which store counts now, and since when it fell back."""
        if self._redis is None:
            return {"status": "local", "store": "memory"}
        if self._outage_since is None:
            return {"status": "ok", "store": "redis"}
        return {"status": "degraded", "store": "memory", "fallback_since": self._outage_since}

    async def _run(self, call: Callable[[_Strategy], Awaitable[T]]) -> T:
        """Run `call` on Redis, or on process memory while Redis is failing."""
        redis = self._redis
        retry_due = self._failed_at is None or time.monotonic() - self._failed_at >= REDIS_RETRY_S
        if redis is not None and retry_due:
            try:
                result = await call(redis)
            except StorageError as exc:
                self._fall_back(exc)
            else:
                if self._outage_since is not None:
                    self._recover()
                return result
        return await call(self._memory)

    def _fall_back(self, exc: StorageError) -> None:
        self._failed_at = time.monotonic()
        if self._outage_since is None:
            self._outage_since = time.time()
            RATE_LIMIT_STORE_FALLBACKS.inc()
            RATE_LIMIT_STORE_DEGRADED.set(1)
            error = exc.storage_error
            log.warning(
                "rate_limit_store_unavailable",
                store="redis",
                fallback="memory",
                error=f"{type(error).__name__}: {error}"[:300],
            )

    def _recover(self) -> None:
        down_s = round(time.time() - (self._outage_since or time.time()), 1)
        log.info("rate_limit_store_recovered", store="redis", down_s=down_s)
        self._failed_at = self._outage_since = None
        RATE_LIMIT_STORE_DEGRADED.set(0)

    async def hit(self, limit: Limit, key: str) -> Decision:
        async def hit_and_read(strategy: _Strategy) -> tuple[bool, float, int]:
            allowed = await strategy.hit(limit.rate, limit.name, key)
            stats = await strategy.get_window_stats(limit.rate, limit.name, key)
            return allowed, stats.reset_time, stats.remaining

        allowed, reset_time, remaining = await self._run(hit_and_read)
        reset_s = max(1, math.ceil(reset_time - time.time()))
        return Decision(limit, allowed, max(0, remaining), reset_s)

    async def spent(self, limit: Limit, key: str) -> int | None:
        """Seconds until `key` may try again if its `limit` is used up (no hit), else None."""

        async def test_and_read(strategy: _Strategy) -> float | None:
            if await strategy.test(limit.rate, limit.name, key):
                return None
            return (await strategy.get_window_stats(limit.rate, limit.name, key)).reset_time

        reset_time = await self._run(test_and_read)
        return None if reset_time is None else max(1, math.ceil(reset_time - time.time()))

    async def clear(self, limits: Sequence[Limit], key: str | None, *, local: bool) -> None:
        """Forget `key`'s counters under each of `limits`, or every counter when `key` is None:
        in this process's memory, and with `local=False` in Redis too (shared, so once)."""
        if key is None:
            await self._memory.storage.reset()
        else:
            for limit in limits:
                await self._memory.clear(limit.rate, limit.name, key)
        if not local and self._redis is not None:
            await self._clear_redis([limit.name for limit in limits], key)

    async def _clear_redis(self, names: Sequence[str], key: str | None) -> None:
        """By key pattern: a counter's key holds its rate, which another process's settings
        may size differently from this one's."""
        if key is None:
            await self._redis.storage.reset()  # type: ignore[union-attr]
            return
        client = aioredis.from_url(self._redis_url, socket_timeout=REDIS_TIMEOUT_S)
        try:
            for name in names:
                pattern = f"LIMITS:{{LIMITER/{_glob_escape(name)}/{_glob_escape(key)}/*"
                doomed = [found async for found in client.scan_iter(match=pattern)]
                if doomed:
                    await client.delete(*doomed)
        except RedisError as exc:
            raise StorageError(exc) from exc
        finally:
            await client.aclose()

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
                if self.on_refusal is not None:
                    self.on_refusal(limit, context)
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
    """The peer address; behind a trusted proxy, the nearest untrusted X-Forwarded-For hop.

    In one spelling per address (`2001:DB8:0::1` is `2001:db8::1`, `::ffff:192.0.2.1` is
    `192.0.2.1`), so that a limit keyed on it cannot be dodged by writing it another way.
    """
    peer = _canonical(request.client.host) if request.client else "unknown"
    if not _trusted(peer, trusted_proxies):
        return peer
    hops = [
        hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()
    ]
    for hop in reversed(hops):
        address = _canonical(hop)
        if _is_ip(address) and not _trusted(address, trusted_proxies):
            return address
    return peer


def address_key(address: str) -> str:
    """What an address-keyed limit counts: an IPv4 address, or an IPv6 address's /64.

    A host is handed a whole /64 (RFC 6177), so per-address counting would let it rotate
    through 2^64 fresh allowances; counting the /64 is what it cannot dodge.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _canonical(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped or ip)


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
