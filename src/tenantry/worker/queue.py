"""The durable queue's writes of new jobs: enqueue, and the fair-queuing clock.

What happens to a job after that (claim, renew, finish, release, reap, cancel,
retry) is its state machine, in tenantry.worker.transitions.

Written in SQLAlchemy Core on the `jobs` table, because the claim and finish
path runs thousands of times a second; every statement is one round trip.

Fairness is start-time fair queuing. Each job gets a start tag (`vtime`):
`max(V, tenant's last tag) + 1`, where V, the queue's virtual time, is the
highest tag claimed so far (the `*` clock row). Claims take jobs in tag order,
so a tenant that queued 10,000 jobs holds tags far ahead of V while another
tenant's new job is tagged V + 1 and goes out with the next claim: tenants with
a backlog are served round-robin, one tag each in turn.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Dialect,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db import Database, after_commit, insert_for
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.logging import current_trace_id
from tenantry.metrics import JOBS_ENQUEUED
from tenantry.models import Job, JobStatus, JobTenantClock
from tenantry.worker.registry import registry

jobs = cast(Table, Job.__table__)
clocks = cast(Table, JobTenantClock.__table__)

GLOBAL_CLOCK = "*"  # the queue's virtual time V
NOTIFY_CHANNEL = "tenantry_jobs"
DEFAULT_QUEUE = "default"
MAX_ERROR_CHARS = 4000


# The priority of platform work a person is waiting on as it runs (a verification code,
# a provisioning run): claimed ahead of the backlog, such as welcome mails, that is not.
WAITED_ON = -10


@dataclass(frozen=True)
class JobSpec:
    kind: str
    payload: Any
    tenant_id: str | None = None
    queue: str = DEFAULT_QUEUE
    run_at: datetime | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    priority: int = 0  # lower runs first (WAITED_ON)
    submitted_by: str | None = None  # the API caller who submitted it (admission counts these)

    @property
    def dedupe_key(self) -> str | None:
        if self.idempotency_key is None:
            return None
        return f"{self.tenant_id or '-'}:{self.kind}:{self.idempotency_key}"


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    kind: str
    tenant_id: str | None
    queue: str
    payload: Any
    attempts: int  # including this one
    max_attempts: int
    run_at: datetime
    claimed_at: datetime
    trace_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How one claimed attempt ended, written back by `finish`."""

    job_id: str
    attempt: int
    status: JobStatus  # COMPLETED, PENDING (retry later) or FAILED
    result: Any = None
    error: str | None = None
    retry_at: datetime | None = None


def greatest(dialect: Dialect, a: Any, b: Any) -> ColumnElement[Any]:
    return func.greatest(a, b) if dialect.name == "postgresql" else func.max(a, b)


async def virtual_time(session: AsyncSession) -> int:
    """V: the highest tag claimed so far."""
    query = select(clocks.c.last_vtime).where(clocks.c.tenant_key == GLOBAL_CLOCK)
    return int((await session.execute(query)).scalar_one())


async def _advance_clock(session: AsyncSession, tenant_key: str, count: int) -> int:
    """Reserve `count` consecutive tags for a tenant; return the last one."""
    dialect = session.get_bind().dialect
    virtual_time = func.coalesce(
        select(clocks.c.last_vtime).where(clocks.c.tenant_key == GLOBAL_CLOCK).scalar_subquery(), 0
    )
    statement = (
        insert_for(session)(clocks)
        .values(tenant_key=tenant_key, last_vtime=virtual_time + count)
        .on_conflict_do_update(
            index_elements=[clocks.c.tenant_key],
            set_={"last_vtime": greatest(dialect, clocks.c.last_vtime, virtual_time) + count},
        )
        .returning(clocks.c.last_vtime)
    )
    return int((await session.execute(statement)).scalar_one())


def _row(spec: JobSpec, vtime: int, now: datetime) -> dict[str, Any]:
    max_attempts = spec.max_attempts or registry.get(spec.kind).max_attempts
    return {
        "id": new_id("job"),
        "tenant_id": spec.tenant_id,
        "queue": spec.queue,
        "kind": spec.kind,
        "payload": spec.payload,
        "status": JobStatus.PENDING.value,
        "priority": spec.priority,
        "vtime": vtime,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_at": spec.run_at or now,
        "created_at": now,
        "dedupe_key": spec.dedupe_key,
        "submitted_by": spec.submitted_by,
        "trace_id": current_trace_id(),
    }


async def enqueue_many(session: AsyncSession, specs: Sequence[JobSpec]) -> list[str]:
    """Write jobs in the caller's transaction; return their ids (an existing id for a duplicate)."""
    now = utcnow()
    positions: dict[str, list[int]] = defaultdict(list)
    platform: list[int] = []
    for index, spec in enumerate(specs):
        (positions[spec.tenant_id].append if spec.tenant_id else platform.append)(index)
    rows: list[dict[str, Any]] = [{}] * len(specs)
    for tenant_id, indices in positions.items():
        last = await _advance_clock(session, tenant_id, len(indices))
        for offset, index in enumerate(indices):
            rows[index] = _row(specs[index], last - len(indices) + 1 + offset, now)
    if platform:
        # The platform's own work (mail, provisioning) is not rationed: it is tagged
        # as a newcomer, and writes no clock row that every signup would queue on.
        tag = await virtual_time(session) + 1
        for index in platform:
            rows[index] = _row(specs[index], tag, now)

    plain = [row for row in rows if row["dedupe_key"] is None]
    if plain:
        await session.execute(insert(jobs), plain)
    for row in rows:
        if row["dedupe_key"] is not None:
            inserted = await session.execute(
                insert_for(session)(jobs)
                .values(row)
                .on_conflict_do_nothing(index_elements=[jobs.c.dedupe_key])
                .returning(jobs.c.id)
            )
            if inserted.scalar_one_or_none() is None:
                existing = select(jobs.c.id).where(jobs.c.dedupe_key == row["dedupe_key"])
                row["id"] = (await session.execute(existing)).scalar_one()

    database = Database.of(session)
    if database.is_postgres:
        for queue in {spec.queue for spec in specs}:
            await session.execute(select(func.pg_notify(NOTIFY_CHANNEL, queue)))
    kinds = Counter(spec.kind for spec in specs)
    after_commit(session, lambda: _count_enqueued(kinds))
    after_commit(session, database.wakeup.notify)
    return [row["id"] for row in rows]


def _count_enqueued(kinds: Counter[str]) -> None:
    for kind, count in kinds.items():
        JOBS_ENQUEUED.labels(kind).inc(count)


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: Any,
    *,
    tenant_id: str | None = None,
    queue: str = DEFAULT_QUEUE,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
    priority: int = 0,
    submitted_by: str | None = None,
) -> str:
    """Write one job in the caller's transaction: it exists if and only if that commits."""
    spec = JobSpec(
        kind,
        payload,
        tenant_id,
        queue,
        run_at,
        max_attempts,
        idempotency_key,
        priority,
        submitted_by,
    )
    (job_id,) = await enqueue_many(session, [spec])
    return job_id
