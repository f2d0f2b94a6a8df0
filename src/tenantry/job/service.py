"""Actions on jobs and queues: tenants' submissions through the API, and the operators' CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import NotFound, TenantryError
from tenantry.event import service as events
from tenantry.job import admission
from tenantry.kit.clock import utcnow
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.metrics import QUEUE_DEPTH
from tenantry.models import Job, JobStatus, QueueState
from tenantry.worker import transitions
from tenantry.worker.queue import enqueue
from tenantry.worker.registry import UnknownJobKind, registry

RETENTION_BATCH = 1000


class UnknownKind(TenantryError):
    status, code, title = 400, "UNKNOWN_JOB_KIND", "No such job kind"


async def submit_job(
    session: AsyncSession,
    settings: Settings,
    *,
    tenant_id: str,
    kind: str,
    payload: Any,
    submitted_by: str,
) -> Job:
    """A tenant's job, admitted under the caps and durable once the caller commits."""
    try:
        known = registry.get(kind).tenant_submittable
    except UnknownJobKind:
        known = False
    if not known:
        raise UnknownKind(f"{kind!r} is not a job kind tenants can submit")
    await admission.admit(session, settings, tenant_id=tenant_id, kind=kind)
    job_id = await enqueue(session, kind, payload, tenant_id=tenant_id, submitted_by=submitted_by)
    events.record(
        session,
        "job.Submitted",
        tenant_id=tenant_id,
        subject_id=job_id,
        data={"kind": kind, "submitted_by": submitted_by},
    )
    return await get_job(session, job_id)


async def get_submitted(session: AsyncSession, tenant_id: str, job_id: str) -> Job:
    """A job the tenant submitted; the platform's own jobs for it are not the tenant's to see."""
    job = await get_or_404(session, Job, job_id, tenant_id=tenant_id)
    if job.submitted_by is None:
        raise NotFound(f"no job {job_id}")
    return job


async def list_submitted(
    session: AsyncSession,
    tenant_id: str,
    *,
    status: JobStatus | None,
    kind: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Job]:
    """Newest first; `after` is the (created_at, id) of the last job already seen."""
    query = (
        select(Job)
        .where(Job.tenant_id == tenant_id, Job.submitted_by.is_not(None))
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(Job.status == status.value)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if after is not None:
        query = query.where(tuple_(Job.created_at, Job.id) < after)
    return (await session.execute(query)).scalars().all()


async def cancel_submitted(session: AsyncSession, tenant_id: str, job_id: str) -> Job:
    await get_submitted(session, tenant_id, job_id)
    job = await cancel_job(session, job_id)
    events.record(session, "job.Cancelled", tenant_id=tenant_id, subject_id=job_id)
    return job


async def get_job(session: AsyncSession, job_id: str) -> Job:
    return await get_or_404(session, Job, job_id, tenant_id=ANY_TENANT)


async def list_jobs(
    session: AsyncSession,
    *,
    status: JobStatus | None = None,
    kind: str | None = None,
    tenant_id: str | None = None,
    limit: int = 50,
) -> Sequence[Job]:
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Job.status == status.value)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    return (await session.execute(query)).scalars().all()


async def retry_job(session: AsyncSession, job_id: str) -> Job:
    """Put a FAILED job back in line (near the front) with its attempts reset."""
    job = await get_job(session, job_id)
    await transitions.retry(session, job)
    return job


async def cancel_job(session: AsyncSession, job_id: str) -> Job:
    job = await get_job(session, job_id)
    await transitions.cancel(session, job)
    return job


async def set_queue_paused(session: AsyncSession, name: str, paused: bool) -> None:
    state = await session.get(QueueState, name)
    if state is None:
        session.add(QueueState(name=name, paused=paused, updated_at=utcnow()))
    else:
        state.paused, state.updated_at = paused, utcnow()


async def paused_queues(session: AsyncSession) -> list[str]:
    rows = await session.execute(select(QueueState.name).where(QueueState.paused.is_(True)))
    return sorted(rows.scalars())


@dataclass(frozen=True)
class QueueStats:
    queue: str
    status: str
    count: int
    oldest_pending_age_s: float | None


async def queue_stats(session: AsyncSession) -> list[QueueStats]:
    """Counts per queue and status, and the age of the oldest due job per queue."""
    now = utcnow()
    rows = await session.execute(
        select(Job.queue, Job.status, func.count(), func.min(Job.run_at)).group_by(
            Job.queue, Job.status
        )
    )
    stats = []
    for queue_name, status, count, oldest in rows:
        waiting = status == JobStatus.PENDING and oldest is not None and oldest <= now
        age = (now - _aware(oldest)).total_seconds() if waiting else None
        stats.append(QueueStats(queue_name, status, count, age))
    return sorted(stats, key=lambda s: (s.queue, s.status))


def _aware(moment: datetime) -> datetime:
    # Aggregates bypass the column type on SQLite and come back as text.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


async def refresh_depth_gauges(database: Database) -> None:
    """Set the queue-depth gauges from the database (called at scrape time)."""
    async with database.reader(cross_tenant="metrics") as session:
        stats = await queue_stats(session)
    QUEUE_DEPTH.clear()
    for entry in stats:
        if entry.status in (JobStatus.PENDING, JobStatus.PROCESSING):
            QUEUE_DEPTH.labels(entry.queue, entry.status).set(entry.count)


@dataclass(frozen=True)
class RetentionReport:
    completed_or_cancelled: int
    failed: int


async def delete_older(
    database: Database, statuses: Sequence[JobStatus], older_than: timedelta
) -> int:
    """Delete jobs in `statuses` finished more than `older_than` ago, a batch per transaction
    (no long locks); the count."""
    cutoff = utcnow() - older_than
    total = 0
    while True:
        async with database.session(cross_tenant="job retention") as session:
            batch = (
                select(Job.id)
                .where(Job.status.in_([s.value for s in statuses]), Job.finished_at < cutoff)
                .limit(RETENTION_BATCH)
                .scalar_subquery()
            )
            result = await session.execute(delete(Job).where(Job.id.in_(batch)))
            deleted = int(result.rowcount)  # type: ignore[attr-defined]
        total += deleted
        if deleted < RETENTION_BATCH:
            return total


async def delete_finished(
    database: Database, *, completed: timedelta, failed: timedelta
) -> RetentionReport:
    """Delete finished jobs past their retention, a batch per transaction: no long locks."""
    return RetentionReport(
        completed_or_cancelled=await delete_older(
            database, [JobStatus.COMPLETED, JobStatus.CANCELLED], completed
        ),
        failed=await delete_older(database, [JobStatus.FAILED], failed),
    )
