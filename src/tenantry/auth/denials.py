"""The record of refused requests behind `tenantry denials`: a table, written in batches.

A refusal is logged and counted at once (tenantry.auth.access); its row waits
in a bounded in-process buffer and a background task writes the buffer once a
second in one transaction. A request never writes for a refusal, so a burst of
forbidden calls costs no write each, and a full buffer drops rows (counted in
`tenantry_authz_denials_dropped_total`) rather than memory. A crash loses at
most the last second's rows; the log lines of those refusals remain.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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
MAX_BUFFERED = 10_000
RETENTION = timedelta(days=30)


class DenialLog:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._buffer: list[dict[str, Any]] = []

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
        if len(self._buffer) >= MAX_BUFFERED:
            AUTHZ_DENIALS_DROPPED.inc()
            return
        self._buffer.append(
            {
                "id": new_id("dny"),
                "occurred_at": utcnow(),
                "reason": reason,
                "route": route[:200],
                "method": method,
                "subject": subject[:64],
                "audience": audience,
                "tenant_id": tenant_id[:40] if tenant_id else None,
            }
        )

    async def flush(self) -> int:
        rows, self._buffer = self._buffer, []
        if rows:
            async with self.database.session(cross_tenant="denials") as session:
                await session.execute(insert(AuthzDenial), rows)
        return len(rows)

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
            func.count(),
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
