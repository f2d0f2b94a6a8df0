"""The record of refused requests behind `tenantry denials`: a table, written in batches.

A refusal is logged and counted at once (tenantry.auth.access); in memory it
is added to a count per (reason, route, method, subject, audience, tenant),
and a background task writes one row per such key once a second, with its
count. A request never writes for a refusal, and a flood of refusals from one
caller is one row a second, not one per request. Past `MAX_KEYS` distinct keys
in a second, refusals are dropped from the table (counted in
`tenantry_authz_denials_dropped_total`; the log lines remain). A crash loses
at most the last second's counts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.metrics import AUTHZ_DENIALS_DROPPED
from tenantry.models import AuthzDenial

log = structlog.get_logger(__name__)

FLUSH_EVERY_S = 1.0
MAX_KEYS = 10_000
RETENTION = timedelta(days=30)


DenialKey = tuple[str, str, str, str, str, str | None]
KEY_FIELDS = ("reason", "route", "method", "subject", "audience", "tenant_id")


class DenialLog:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._counts: Counter[DenialKey] = Counter()
        self._last: dict[DenialKey, datetime] = {}

    def add(
        self,
        *,
        reason: str,
        route: str,
        method: str,
        subject: str,
        audience: str,
        tenant_id: str | None,
    ) -> None:
        key = (reason, route[:200], method, subject[:64], audience, tenant_id and tenant_id[:40])
        if key not in self._counts and len(self._counts) >= MAX_KEYS:
            AUTHZ_DENIALS_DROPPED.inc()
            return
        self._counts[key] += 1
        self._last[key] = utcnow()

    async def flush(self) -> int:
        """Write what was counted since the last flush; returns the number of refusals."""
        counts, last = self._counts, self._last
        self._counts, self._last = Counter(), {}
        rows = [
            dict(
                zip(KEY_FIELDS, key, strict=True),
                id=new_id("dny"),
                occurred_at=last[key],
                count=count,
            )
            for key, count in counts.items()
        ]
        if rows:
            async with self.database.session(cross_tenant="denials") as session:
                await session.execute(insert(AuthzDenial), rows)
        return sum(counts.values())

    async def run(self) -> None:
        """Flush every second until cancelled; a failed write is logged and its rows dropped."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                await self.flush()
            except Exception:
                log.warning("denials_flush_failed", exc_info=True)


@dataclass(frozen=True)
class DenialSummary:
    reason: str
    count: int
    last_at: datetime
    top_route: str
    subjects: int


async def summarize(session: AsyncSession, since: timedelta) -> list[DenialSummary]:
    """Refusals of the last `since`, by reason, most frequent first."""
    rows = await session.execute(
        select(
            AuthzDenial.reason,
            AuthzDenial.method,
            AuthzDenial.route,
            AuthzDenial.subject,
            func.sum(AuthzDenial.count),
            func.max(AuthzDenial.occurred_at),
        )
        .where(AuthzDenial.occurred_at >= utcnow() - since)
        .group_by(AuthzDenial.reason, AuthzDenial.method, AuthzDenial.route, AuthzDenial.subject)
    )
    counts: Counter[str] = Counter()
    routes: dict[str, Counter[str]] = {}
    subjects: dict[str, set[str]] = {}
    last: dict[str, datetime] = {}
    for reason, method, route, subject, count, latest in rows:
        count = int(count)
        counts[reason] += count
        routes.setdefault(reason, Counter())[f"{method} {route}"] += count
        subjects.setdefault(reason, set()).add(subject)
        latest = datetime.fromisoformat(latest) if isinstance(latest, str) else latest
        last[reason] = max(last.get(reason, latest), latest)
    return [
        DenialSummary(
            reason,
            count,
            last[reason],
            routes[reason].most_common(1)[0][0],
            len(subjects[reason]),
        )
        for reason, count in counts.most_common()
    ]


async def delete_old(session: AsyncSession) -> int:
    result = await session.execute(
        delete(AuthzDenial).where(AuthzDenial.occurred_at < utcnow() - RETENTION)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
