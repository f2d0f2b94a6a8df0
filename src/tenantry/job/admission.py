"""Admission caps for jobs submitted through the jobs API, so one tenant cannot flood the queue.

Three caps over submitted jobs that are PENDING or PROCESSING: all tenants
together, each tenant, and each kind with a configured cap. Counting and the
insert that follows run under one lock (PostgreSQL: a transaction-scoped
advisory lock; SQLite: its single writer), so 200 racing enqueues against a
cap of 80 admit exactly 80. A refusal's `Retry-After` is how long the recent
completion rate of that cap's jobs takes to free a slot. While degraded mode is
on (read under the same lock, so every process agrees at once) the total and
per-tenant caps drop to their emergency values.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import RateLimited
from tenantry.flag import service as flags
from tenantry.kit.clock import utcnow
from tenantry.models import Job, JobStatus
from tenantry.models.job import ADMITTED
from tenantry.tenancy import cross_tenant

ADMISSION_LOCK = 0x746E7479  # the advisory lock key of admission ("tnty")
RATE_WINDOW = timedelta(minutes=1)  # completions counted for Retry-After
MAX_RETRY_AFTER_S = 300
FINISHED = (JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)


@dataclass(frozen=True)
class Cap:
    """One cap: what it covers, its limit, and how many submitted jobs are in flight under it."""

    scope: str  # "total", "tenant <id>" or "kind <name>"
    limit: int
    in_use: int
    tenant_id: str | None = None
    kind: str | None = None

    @property
    def full(self) -> bool:
        return self.in_use >= self.limit


async def _in_flight(session: AsyncSession) -> Counter[tuple[str | None, str]]:
    query = (
        select(Job.tenant_id, Job.kind, func.count())
        .where(text(ADMITTED))
        .group_by(Job.tenant_id, Job.kind)
    )
    # Every tenant's jobs count against the total cap, even in one tenant's transaction.
    async with cross_tenant(session, "admission"):
        rows = (await session.execute(query)).all()
    return Counter({(tenant_id, kind): count for tenant_id, kind, count in rows})


@dataclass(frozen=True)
class Limits:
    total: int
    per_tenant: int


async def limits(session: AsyncSession, settings: Settings) -> Limits:
    """The caps in force: the settings', or their emergency values in degraded mode."""
    if (await flags.degraded(session)).enabled:
        return Limits(
            settings.degraded_max_inflight_total, settings.degraded_max_inflight_per_tenant
        )
    return Limits(settings.enqueue_max_inflight_total, settings.enqueue_max_inflight_per_tenant)


async def caps_for(
    session: AsyncSession, settings: Settings, *, tenant_id: str, kind: str
) -> list[Cap]:
    """The caps an enqueue of `kind` by `tenant_id` must fit under, with their use now."""
    use = await _in_flight(session)
    limit = await limits(session, settings)
    caps = [
        Cap("total", limit.total, sum(use.values())),
        Cap(
            f"tenant {tenant_id}",
            limit.per_tenant,
            sum(n for (tenant, _), n in use.items() if tenant == tenant_id),
            tenant_id=tenant_id,
        ),
    ]
    if (kind_limit := settings.enqueue_max_inflight_per_kind.get(kind)) is not None:
        in_use = sum(n for (_, k), n in use.items() if k == kind)
        caps.append(Cap(f"kind {kind}", kind_limit, in_use, kind=kind))
    return caps


async def all_caps(session: AsyncSession, settings: Settings) -> list[Cap]:
    """Every cap with its use: the total, each tenant with jobs in flight, each capped kind."""
    use = await _in_flight(session)
    limit = await limits(session, settings)
    by_tenant: Counter[str | None] = Counter()
    by_kind: Counter[str] = Counter()
    for (tenant_id, kind), count in use.items():
        by_tenant[tenant_id] += count
        by_kind[kind] += count
    caps = [Cap("total", limit.total, sum(use.values()))]
    caps += [
        Cap(f"tenant {tenant_id}", limit.per_tenant, count, tenant_id)
        for tenant_id, count in by_tenant.most_common()
    ]
    caps += [
        Cap(f"kind {kind}", limit, by_kind[kind], kind=kind)
        for kind, limit in sorted(settings.enqueue_max_inflight_per_kind.items())
    ]
    return caps


async def admit(session: AsyncSession, settings: Settings, *, tenant_id: str, kind: str) -> None:
    """Hold the admission lock until the caller's transaction ends, or raise `RateLimited`."""
    if Database.of(session).is_postgres:
        await session.execute(select(func.pg_advisory_xact_lock(ADMISSION_LOCK)))
    for cap in await caps_for(session, settings, tenant_id=tenant_id, kind=kind):
        if cap.full:
            wait = await retry_after(session, cap)
            raise RateLimited(
                f"Too many jobs in flight ({cap.scope}: {cap.in_use} of {cap.limit}); "
                f"retry in {wait} s",
                headers={"Retry-After": str(wait)},
                cap=cap.scope.split()[0],
            )


async def retry_after(session: AsyncSession, cap: Cap) -> int:
    """Seconds until the cap's recent completion rate frees one slot (the window if none)."""
    conditions: list[ColumnElement[bool]] = [
        Job.submitted_by.is_not(None),
        Job.status.in_(FINISHED),
        Job.finished_at >= utcnow() - RATE_WINDOW,
    ]
    if cap.tenant_id is not None:
        conditions.append(Job.tenant_id == cap.tenant_id)
    if cap.kind is not None:
        conditions.append(Job.kind == cap.kind)
    async with cross_tenant(session, "admission"):
        finished = (await session.execute(select(func.count()).where(*conditions))).scalar_one()
    if finished == 0:
        return int(RATE_WINDOW.total_seconds())
    per_second = finished / RATE_WINDOW.total_seconds()
    waiting = cap.in_use - cap.limit + 1
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(waiting / per_second)))
