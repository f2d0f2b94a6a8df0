"""The record of refused requests behind `tenantry denials`: a table, written in batches.

A refusal is logged and counted at once (tenantry.auth.access); here it is
counted per (reason, route, method, subject, audience, tenant) and written a
row per key each second (tenantry.kit.batched), with its count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db import Database
from tenantry.kit.batched import BatchedCounts
from tenantry.kit.clock import utcnow
from tenantry.metrics import AUTHZ_DENIALS_DROPPED
from tenantry.models import AuthzDenial

RETENTION = timedelta(days=30)
KEY_FIELDS = ("reason", "route", "method", "subject", "audience", "tenant_id")


class DenialLog(BatchedCounts):
    def __init__(self, database: Database) -> None:
        super().__init__(
            database, AuthzDenial, KEY_FIELDS, id_prefix="dny", dropped=AUTHZ_DENIALS_DROPPED
        )

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
        self.count(
            (reason, route[:200], method, subject[:64], audience, tenant_id and tenant_id[:40])
        )


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
