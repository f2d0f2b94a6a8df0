"""Periodic tasks: each tick fires once however many workers run, enforced by the database.

Every schedule is a row with `next_run_at`. A worker that finds it due
advances it with a compare-and-set on the value it read, and only the worker
whose update matched enqueues the job, in the same transaction. The next tick
is computed from now, so ticks missed while no worker ran fire once, not once
each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db import Database, insert_for
from tenantry.kit.clock import utcnow
from tenantry.models import Job, Schedule
from tenantry.worker import queue
from tenantry.worker.registry import ScheduleSpec, TaskRegistry


async def sync_schedules(database: Database, tasks: TaskRegistry) -> None:
    """Create rows for schedules declared in code; a changed cron restarts its clock.

    Workers starting together race here: inserts that lose are ignored.
    """
    now = utcnow()
    async with database.session(cross_tenant="scheduler") as session:
        for spec in tasks.schedules():
            await session.execute(
                insert_for(session)(Schedule)
                .values(
                    name=spec.name, cron=spec.cron, next_run_at=spec.next_after(now), updated_at=now
                )
                .on_conflict_do_nothing(index_elements=[Schedule.name])
            )
            await session.execute(
                update(Schedule)
                .where(Schedule.name == spec.name, Schedule.cron != spec.cron)
                .values(cron=spec.cron, next_run_at=spec.next_after(now), updated_at=now)
            )


async def _fire(
    session: AsyncSession, spec: ScheduleSpec, seen: datetime, *, key: str
) -> str | None:
    """Advance the schedule from `seen`; enqueue its job only if this caller won the update."""
    now = utcnow()
    advanced = await session.execute(
        update(Schedule)
        .where(Schedule.name == spec.name, Schedule.next_run_at == seen)
        .values(next_run_at=spec.next_after(now), last_run_at=now, updated_at=now)
    )
    if advanced.rowcount != 1:  # type: ignore[attr-defined]
        return None
    job_id = await queue.enqueue(session, spec.kind, spec.payload, idempotency_key=key)
    await session.execute(
        update(Schedule).where(Schedule.name == spec.name).values(last_job_id=job_id)
    )
    return job_id


async def fire_due(database: Database, tasks: TaskRegistry) -> list[str]:
    """Fire every due schedule this worker wins; return the enqueued job ids."""
    specs = {spec.name: spec for spec in tasks.schedules()}
    if not specs:
        return []
    async with database.session(cross_tenant="scheduler") as session:
        due = (
            await session.execute(
                select(Schedule.name, Schedule.next_run_at).where(
                    Schedule.next_run_at <= utcnow(),
                    Schedule.name.in_(specs),
                    Schedule.enabled.is_(True),
                )
            )
        ).all()
    fired = []
    for name, seen in due:
        async with database.session(cross_tenant="scheduler") as session:
            job_id = await _fire(
                session, specs[name], seen, key=f"schedule:{name}:{seen.isoformat()}"
            )
        if job_id is not None:
            fired.append(job_id)
    return fired


class UnknownSchedule(LookupError):
    pass


async def set_enabled(session: AsyncSession, tasks: TaskRegistry, name: str, enabled: bool) -> None:
    """Skip a schedule's ticks (a periodic task stuck failing) or take them up again; enabled
    again, its next tick is computed from now, so the ticks it missed do not pile up."""
    spec = next((s for s in tasks.schedules() if s.name == name), None)
    row = await session.get(Schedule, name, with_for_update=True)
    if spec is None or row is None:
        raise UnknownSchedule(name)
    now = utcnow()
    changes: dict[str, object] = {"enabled": enabled, "updated_at": now}
    if enabled and not row.enabled:
        changes["next_run_at"] = spec.next_after(now)
    await session.execute(update(Schedule).where(Schedule.name == name).values(**changes))


async def enabled_state(session: AsyncSession, name: str) -> dict[str, Any] | None:
    row = await session.get(Schedule, name)
    return None if row is None else {"enabled": row.enabled}


async def run_now(session: AsyncSession, tasks: TaskRegistry, name: str) -> str:
    """Fire a schedule out of turn (an operator's `schedules run`); its clock restarts from now."""
    spec = next((s for s in tasks.schedules() if s.name == name), None)
    row = await session.get(Schedule, name)
    if spec is None or row is None:
        raise UnknownSchedule(name)
    job_id = await _fire(
        session, spec, row.next_run_at, key=f"schedule:{name}:manual:{utcnow().isoformat()}"
    )
    if job_id is None:
        raise UnknownSchedule(f"{name} fired concurrently; try again")
    return job_id


@dataclass(frozen=True)
class ScheduleView:
    name: str
    cron: str
    kind: str
    next_run_at: datetime
    last_run_at: datetime | None
    last_outcome: str | None  # the status of the last job it enqueued
    enabled: bool


async def list_schedules(session: AsyncSession, tasks: TaskRegistry) -> list[ScheduleView]:
    specs = {spec.name: spec for spec in tasks.schedules()}
    rows = await session.execute(
        select(Schedule, Job.status)
        .outerjoin(Job, Job.id == Schedule.last_job_id)
        .order_by(Schedule.name)
    )
    return [
        ScheduleView(
            row.name,
            row.cron,
            specs[row.name].kind,
            row.next_run_at,
            row.last_run_at,
            status,
            row.enabled,
        )
        for row, status in rows
        if row.name in specs
    ]
