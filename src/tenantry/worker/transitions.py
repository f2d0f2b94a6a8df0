"""The job state machine: every change of a job's status, each one conditional update.

PENDING → PROCESSING (claim) → COMPLETED | PENDING (retry later) | FAILED; a PENDING
job may be CANCELLED; an operator puts a FAILED one back to PENDING. Claims, outcomes,
releases and the reaper are set-based statements in SQLAlchemy Core (the hot path runs
thousands of times a second); each matches only rows still in the state it moves from,
so a late or duplicate writer changes nothing (Procrastinate's schema.sql raises in the
same places).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import ColumnElement, Table, bindparam, case, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import Job, JobStatus, Tenant, TenantStatus
from tenantry.worker.queue import (
    GLOBAL_CLOCK,
    MAX_ERROR_CHARS,
    ClaimedJob,
    Outcome,
    clocks,
    greatest,
    jobs,
    virtual_time,
)

J = JobStatus
tenants = cast(Table, Tenant.__table__)
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    J.PENDING: frozenset({J.PROCESSING, J.CANCELLED}),
    J.PROCESSING: frozenset({J.COMPLETED, J.PENDING, J.FAILED}),
    J.FAILED: frozenset({J.PENDING}),
    J.COMPLETED: frozenset(),
    J.CANCELLED: frozenset(),
}


class JobStateConflict(TenantryError):
    status, code, title = 409, "JOB_STATE", "The job is not in a state that allows this"


MACHINE = Machine(Job, ALLOWED, JobStateConflict)


async def retry(session: AsyncSession, job: Job) -> None:
    """A FAILED job back in line (near the front) with its attempts reset."""
    if job.status != J.FAILED:
        raise JobStateConflict(f"job {job.id} is {job.status}; only FAILED jobs can be retried")
    vtime = await virtual_time(session) + 1
    if not await MACHINE.move(
        session,
        job,
        J.PENDING,
        attempts=0,
        run_at=utcnow(),
        vtime=vtime,
        finished_at=None,
        worker_id=None,
    ):
        raise JobStateConflict(f"job {job.id} is {job.status} meanwhile")


async def cancel(session: AsyncSession, job: Job) -> None:
    """Cancel a job that has not started; a claim that got there first wins."""
    if job.status != J.PENDING:
        raise JobStateConflict(f"job {job.id} is {job.status}; only PENDING jobs can be cancelled")
    if not await MACHINE.move(session, job, J.CANCELLED, finished_at=utcnow()):
        raise JobStateConflict(f"job {job.id} is {job.status}; only PENDING jobs can be cancelled")


async def claim(
    session: AsyncSession,
    *,
    worker_id: str,
    limit: int,
    lease: timedelta,
    queues: Sequence[str] | None = None,
    paused: Sequence[str] = (),
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs in fair order and lease them to `worker_id`."""
    now = utcnow()
    due = jobs.c.status == JobStatus.PENDING.value
    conditions = [due, jobs.c.run_at <= now]
    if queues is not None:
        conditions.append(jobs.c.queue.in_(queues))
    if paused:
        conditions.append(jobs.c.queue.not_in(paused))
    # A suspended tenant's jobs wait, in line, until it is reactivated.
    suspended = select(tenants.c.id).where(tenants.c.status == TenantStatus.SUSPENDED.value)
    conditions.append(or_(jobs.c.tenant_id.is_(None), jobs.c.tenant_id.not_in(suspended)))
    picked = (
        select(jobs.c.id)
        .where(*conditions)
        .order_by(jobs.c.priority, jobs.c.vtime)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    statement = (
        update(jobs)
        .where(jobs.c.id == picked.c.id)
        .values(
            status=JobStatus.PROCESSING.value,
            attempts=jobs.c.attempts + 1,
            worker_id=worker_id,
            lease_expires_at=now + lease,
            started_at=now,
        )
        .returning(
            jobs.c.id,
            jobs.c.kind,
            jobs.c.tenant_id,
            jobs.c.queue,
            jobs.c.payload,
            jobs.c.attempts,
            jobs.c.max_attempts,
            jobs.c.run_at,
            jobs.c.priority,
            jobs.c.vtime,
            jobs.c.trace_id,
        )
    )
    rows = list((await session.execute(statement)).all())
    if not rows:
        return []
    dialect = session.get_bind().dialect
    await session.execute(
        update(clocks)
        .where(clocks.c.tenant_key == GLOBAL_CLOCK)
        .values(last_vtime=greatest(dialect, clocks.c.last_vtime, max(row.vtime for row in rows)))
    )
    rows.sort(key=lambda row: (row.priority, row.vtime))
    return [
        ClaimedJob(
            row.id,
            row.kind,
            row.tenant_id,
            row.queue,
            row.payload,
            row.attempts,
            row.max_attempts,
            row.run_at,
            now,
            row.trace_id,
        )
        for row in rows
    ]


def _owned(worker_id: str) -> list[ColumnElement[bool]]:
    return [jobs.c.worker_id == worker_id, jobs.c.status == JobStatus.PROCESSING.value]


async def renew(
    session: AsyncSession, *, worker_id: str, job_ids: Sequence[str], lease: timedelta
) -> None:
    if job_ids:
        await session.execute(
            update(jobs)
            .where(jobs.c.id.in_(job_ids), *_owned(worker_id))
            .values(lease_expires_at=utcnow() + lease)
        )


async def finish(session: AsyncSession, *, worker_id: str, outcomes: Sequence[Outcome]) -> None:
    """Write outcomes back, each only if this worker still holds that attempt's lease.

    A job whose lease ran out was taken back by the reaper and may be running
    elsewhere: its late outcome is dropped (at-least-once, handlers idempotent).
    """
    now = utcnow()
    # The attempt number is the lease token: a re-claim, even by this worker, bumps it.
    simple = [o for o in outcomes if o.status is JobStatus.COMPLETED and o.result is None]
    if simple:
        await session.execute(
            update(jobs)
            .where(
                tuple_(jobs.c.id, jobs.c.attempts).in_([(o.job_id, o.attempt) for o in simple]),
                *_owned(worker_id),
            )
            .values(
                status=JobStatus.COMPLETED.value,
                finished_at=now,
                lease_expires_at=None,
                last_error=None,
            )
        )
    rest = [o for o in outcomes if not (o.status is JobStatus.COMPLETED and o.result is None)]
    if not rest:
        return
    terminal = {JobStatus.COMPLETED, JobStatus.FAILED}
    run_at_type = jobs.c.run_at.type
    statement = (
        update(jobs)
        .where(
            jobs.c.id == bindparam("b_id"),
            jobs.c.attempts == bindparam("b_attempt"),
            *_owned(worker_id),
        )
        .values(
            status=bindparam("b_status"),
            result=bindparam("b_result", type_=jobs.c.result.type),
            last_error=bindparam("b_error"),
            run_at=func.coalesce(bindparam("b_retry_at", type_=run_at_type), jobs.c.run_at),
            finished_at=bindparam("b_finished_at", type_=run_at_type),
            lease_expires_at=None,
            worker_id=bindparam("b_worker"),
        )
    )
    await session.execute(
        statement,
        [
            {
                "b_id": o.job_id,
                "b_attempt": o.attempt,
                "b_status": o.status.value,
                "b_result": o.result,
                "b_error": o.error[:MAX_ERROR_CHARS] if o.error else None,
                "b_retry_at": o.retry_at,
                "b_finished_at": now if o.status in terminal else None,
                # A job going back to PENDING belongs to no worker.
                "b_worker": worker_id if o.status in terminal else None,
            }
            for o in rest
        ],
    )


async def release(session: AsyncSession, *, worker_id: str, job_ids: Sequence[str]) -> None:
    """Hand unfinished jobs back at shutdown; the interrupted attempt does not count."""
    if job_ids:
        await session.execute(
            update(jobs)
            .where(jobs.c.id.in_(job_ids), *_owned(worker_id))
            .values(
                status=JobStatus.PENDING.value,
                attempts=jobs.c.attempts - 1,
                worker_id=None,
                lease_expires_at=None,
                last_error="released at worker shutdown",
            )
        )


@dataclass(frozen=True)
class Reaped:
    job_id: str
    kind: str
    status: JobStatus


async def reap(session: AsyncSession) -> list[Reaped]:
    """Take back jobs whose lease ran out, in one conditional update.

    It matches only rows still PROCESSING under an expired lease, so a worker
    that renews or finishes in time is never overtaken. A job out of attempts
    (it may be what keeps killing workers) fails instead of running again.
    """
    now = utcnow()
    exhausted = jobs.c.attempts >= jobs.c.max_attempts
    statement = (
        update(jobs)
        .where(jobs.c.status == JobStatus.PROCESSING.value, jobs.c.lease_expires_at < now)
        .values(
            status=case((exhausted, JobStatus.FAILED.value), else_=JobStatus.PENDING.value),
            finished_at=case((exhausted, now), else_=None),
            last_error=func.coalesce(jobs.c.worker_id, "?").concat(
                " lost its lease (crashed or stalled)"
            ),
            worker_id=None,
            lease_expires_at=None,
        )
        .returning(jobs.c.id, jobs.c.kind, jobs.c.status)
    )
    return [
        Reaped(row.id, row.kind, JobStatus(row.status)) for row in await session.execute(statement)
    ]
