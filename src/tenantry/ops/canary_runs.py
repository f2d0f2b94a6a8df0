"""The canary's record: each run kept 90 days, its metrics and event, the seven-day report
the launch runbook gates on ("7-day canary clean run"), and the removal of the tenants its
runs made, a day after."""

from __future__ import annotations

import fcntl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.metrics import CANARY_LAST_SUCCESS, CANARY_STAGE_DURATION, CANARY_SUCCESS
from tenantry.models import (
    AuthzDenial,
    CanaryRun,
    Event,
    IntegrationKey,
    Invitation,
    Job,
    JobTenantClock,
    MailMessage,
    Membership,
    RefreshToken,
    SignupSession,
    Tenant,
    User,
)
from tenantry.ops.canary import Run

CANARY_LOCK = 0x63616E61  # the advisory lock key of scheduled canary runs ("cana")


@asynccontextmanager
async def exclusive(database: Database, settings: Settings) -> AsyncIterator[bool]:
    """Whether this process holds the scheduled canary's lock for the block: a PostgreSQL
    session lock, or on SQLite (one host by nature) a lock on a file of the data dir."""
    if database.is_postgres:
        async with database.engine.connect() as connection:
            taken = await connection.scalar(select(func.pg_try_advisory_lock(CANARY_LOCK)))
            try:
                yield bool(taken)
            finally:
                if taken:
                    await connection.scalar(select(func.pg_advisory_unlock(CANARY_LOCK)))
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / "canary.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def record(session: AsyncSession, run: Run, *, started_at: datetime, origin: str) -> CanaryRun:
    """Keep the run and its event in the caller's transaction; set the canary's metrics."""
    row = CanaryRun(
        id=new_id("can"),
        started_at=started_at,
        ok=run.ok,
        failure=run.failure,
        stage=run.failed_stage,
        error=run.error,
        stages=run.to_dict()["stages"],
        breaches=run.breaches,
        origin=origin,
    )
    session.add(row)
    events.record(
        session,
        "canary.RunPassed" if run.ok else "canary.RunFailed",
        subject_id=row.id,
        data={"failure": run.failure, "stage": run.failed_stage, "breaches": run.breaches},
        synthetic=True,
    )
    CANARY_SUCCESS.set(1 if run.ok else 0)
    for stage, seconds in run.durations.items():
        CANARY_STAGE_DURATION.labels(stage).set(seconds)
    if run.ok:
        CANARY_LAST_SUCCESS.set(utcnow().timestamp())
    return row


async def report(session: AsyncSession, days: int) -> dict[str, Any]:
    """Clean means at least one run in the window and none of them failed."""
    since = utcnow() - timedelta(days=days)
    query = select(CanaryRun).where(CanaryRun.started_at >= since).order_by(CanaryRun.started_at)
    runs = list((await session.execute(query)).scalars())
    failures = [
        {"at": run.started_at, "stage": run.stage, "failure": run.failure, "error": run.error}
        for run in runs
        if not run.ok
    ]
    return {
        "days": days,
        "runs": len(runs),
        "clean": bool(runs) and not failures,
        "failures": failures,
    }


async def purge(session: AsyncSession, retention: timedelta) -> int:
    gone = await session.execute(
        delete(CanaryRun).where(CanaryRun.started_at < utcnow() - retention)
    )
    return int(gone.rowcount)  # type: ignore[attr-defined]


# A canary tenant's rows, by the column naming the tenant; children before parents.
_TENANT_ROWS = (
    (Membership, Membership.tenant_id),
    (Invitation, Invitation.tenant_id),
    (IntegrationKey, IntegrationKey.tenant_id),
    (RefreshToken, RefreshToken.tenant_id),
    (Job, Job.tenant_id),
    (MailMessage, MailMessage.tenant_id),
    (Event, Event.tenant_id),
    (AuthzDenial, AuthzDenial.tenant_id),
    (JobTenantClock, JobTenantClock.tenant_key),
    (SignupSession, SignupSession.tenant_id),  # its provisioning steps cascade
    (Tenant, Tenant.id),
)


async def delete_stale_tenants(session: AsyncSession, older_than: timedelta) -> int:
    """Every tenant a canary signup made more than `older_than` ago, with all its rows and
    the canary's users (their addresses are the canary domain's, so nobody else's)."""
    stale = select(SignupSession.tenant_id).where(
        SignupSession.synthetic.is_(True),
        SignupSession.tenant_id.is_not(None),
        SignupSession.created_at < utcnow() - older_than,
    )
    tenant_ids = [str(t) for t in (await session.execute(stale)).scalars()]
    if not tenant_ids:
        return 0
    users = select(Membership.user_id).where(Membership.tenant_id.in_(tenant_ids))
    user_ids = [str(u) for u in (await session.execute(users)).scalars()]
    mail = select(SignupSession.email).where(SignupSession.tenant_id.in_(tenant_ids))
    addresses = [str(a) for a in (await session.execute(mail)).scalars()]
    for model, column in _TENANT_ROWS:
        await session.execute(delete(model).where(column.in_(tenant_ids)))
    await session.execute(delete(MailMessage).where(MailMessage.to_address.in_(addresses)))
    still_member = select(Membership.user_id).where(Membership.user_id == User.id)
    await session.execute(delete(User).where(User.id.in_(user_ids), ~still_member.exists()))
    return len(tenant_ids)
