"""Abuse: who is refused by the rate limits or fails verification, grouped by client address,
network (/24, /64) and email domain (`tenantry abuse report`); and operators' resets of the
rate-limit counters (`tenantry ratelimit reset`), in Redis at once and in every process's
own counters within about a second.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter as Metric
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.batched import BatchedCounts
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.ratelimit import Limit, RateLimiter, address_key
from tenantry.models import AbuseSignal, RateLimitReset
from tenantry.ratelimits import KeyedBy, keyed_by

log = structlog.get_logger(__name__)

RATE_LIMITED, VERIFICATION_FAILED = "rate_limited", "verification_failed"
REPORT_ROWS = 20
DROPPED = Metric(
    "tenantry_abuse_signals_dropped_total",
    "Refusals and failed verifications left out of the abuse record (too many keys a second)",
)


def network_of(address: str) -> str:
    """The /24 of an IPv4 address, the /64 of an IPv6 one; other text as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network((ip, prefix), strict=False))


def _domain(email: str | None) -> str | None:
    return email.rpartition("@")[2].strip().lower()[:255] if email and "@" in email else None


class AbuseLog(BatchedCounts):
    """What the report reads: written in batches like the denials (tenantry.kit.batched)."""

    def __init__(self, database: Database) -> None:
        fields = ("kind", "detail", "address", "network", "email_domain")
        super().__init__(database, AbuseSignal, fields, id_prefix="abs", dropped=DROPPED)

    def _add(self, kind: str, detail: str, address: str, email_domain: str | None) -> None:
        address = address[:64]
        self.count((kind, detail[:64], address, network_of(address)[:64], email_domain))

    def rate_limited(self, limit: Limit, context: dict[str, str]) -> None:
        """A RateLimiter refusal hook."""
        self._add(
            RATE_LIMITED, limit.name, context.get("ip", "unknown"), context.get("email_domain")
        )

    def failed(self, what: str, address: str, *, email: str | None = None) -> None:
        """A verification that failed: a wrong code, password or link."""
        self._add(VERIFICATION_FAILED, what, address, _domain(email))


@dataclass
class Group:
    key: str
    rate_limited: int = 0
    verification_failed: int = 0
    last_at: datetime | None = None
    details: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rate_limited": self.rate_limited,
            "verification_failed": self.verification_failed,
            "last_at": self.last_at,
            "details": sorted(self.details),
        }


async def report(session: AsyncSession, since: timedelta) -> dict[str, Any]:
    """Refusals and failed verifications of the last `since`, by address, network and email
    domain, the most active first (the first 20 of each)."""
    rows = await session.execute(
        select(
            AbuseSignal.kind,
            AbuseSignal.detail,
            AbuseSignal.address,
            AbuseSignal.network,
            AbuseSignal.email_domain,
            func.sum(AbuseSignal.count),
            func.max(AbuseSignal.occurred_at),
        )
        .where(AbuseSignal.occurred_at >= utcnow() - since)
        .group_by(
            AbuseSignal.kind,
            AbuseSignal.detail,
            AbuseSignal.address,
            AbuseSignal.network,
            AbuseSignal.email_domain,
        )
    )
    groups: dict[str, dict[str, Group]] = {"address": {}, "network": {}, "email_domain": {}}
    for kind, detail, address, network, domain, count, last in rows:
        last = datetime.fromisoformat(last) if isinstance(last, str) else last
        for by, key in (("address", address), ("network", network), ("email_domain", domain)):
            if key is None:
                continue
            group = groups[by].setdefault(key, Group(key))
            setattr(group, kind, getattr(group, kind) + int(count))
            group.details.add(detail)
            group.last_at = max(group.last_at or last, last)

    def ranked(by: str) -> list[dict[str, Any]]:
        found = sorted(groups[by].values(), key=lambda g: -(g.rate_limited + g.verification_failed))
        return [group.to_dict() for group in found[:REPORT_ROWS]]

    return {
        "since": utcnow() - since,
        "by_address": ranked("address"),
        "by_network": ranked("network"),
        "by_email_domain": ranked("email_domain"),
    }


# -- resets


@dataclass(frozen=True)
class Reset:
    scope: str  # address | email | all
    value: str | None

    @classmethod
    def of(cls, *, ip: str | None, email: str | None) -> Reset:
        if ip is not None:
            return cls("address", address_key(ip.strip()))
        if email is not None:
            return cls("email", email.strip().lower())
        return cls("all", None)

    def limits(self, settings: Settings) -> list[Limit]:
        if self.scope == "address":
            return keyed_by(settings, KeyedBy.ADDRESS)
        if self.scope == "email":
            return keyed_by(settings, KeyedBy.EMAIL)
        return []

    async def apply(self, limiter: RateLimiter, settings: Settings, *, local: bool) -> None:
        await limiter.clear(self.limits(settings), self.value, local=local)


async def request_reset(session: AsyncSession, reset: Reset) -> RateLimitReset:
    """The row every process follows to clear its own counters."""
    row = RateLimitReset(
        id=new_id("rlr"), scope=reset.scope, value=reset.value, requested_at=utcnow()
    )
    session.add(row)
    return row


class ResetFollower:
    """Applies operators' resets to this process's own counters (Redis is cleared once, by
    the command)."""

    def __init__(self, database: Database, limiter: RateLimiter, settings: Settings) -> None:
        self.database = database
        self.limiter = limiter
        self.settings = settings
        self.seen_until = utcnow()

    async def follow(self) -> int:
        async with self.database.reader(cross_tenant="ratelimit resets") as session:
            query = (
                select(RateLimitReset)
                .where(RateLimitReset.requested_at > self.seen_until)
                .order_by(RateLimitReset.requested_at)
            )
            resets = list((await session.execute(query)).scalars())
        for row in resets:
            await Reset(row.scope, row.value).apply(self.limiter, self.settings, local=True)
            self.seen_until = row.requested_at
            log.info("ratelimit_reset_applied", scope=row.scope)
        return len(resets)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flag_refresh_interval.total_seconds())
            try:
                await self.follow()
            except Exception:
                log.warning("ratelimit_reset_follow_failed", exc_info=True)
