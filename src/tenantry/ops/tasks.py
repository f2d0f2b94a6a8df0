"""The daily integrity check (findings logged and counted, nothing repaired without an
operator: `tenantry integrity check --fix`), and the in-process canary."""

from __future__ import annotations

from datetime import timedelta

import structlog
from sqlalchemy import func, select

from tenantry.kit.clock import utcnow
from tenantry.models import CanaryRun
from tenantry.ops import canary_runs, integrity
from tenantry.ops.canary import alert, run_once, service_token
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)
CANARY_TENANT_LIFETIME = timedelta(hours=24)


@registry.task("integrity.check", max_attempts=3)
async def integrity_check(context: JobContext) -> dict[str, int]:
    async with context.session() as session:
        findings = await integrity.check(session, context.settings)
    for finding in findings:
        log.warning(
            "integrity_finding", kind=finding.kind, count=finding.count, ids=finding.ids[:5]
        )
    return {finding.kind: finding.count for finding in findings}


registry.schedule("integrity.check", "17 3 * * *", "integrity.check")


@registry.task("canary.run", max_attempts=1)
async def canary_run(context: JobContext) -> dict[str, object]:
    """Every minute, a run when TENANTRY_CANARY_INTERVAL has passed since the last one:
    the schedule fires once across all workers, the interval is the setting's."""
    settings = context.settings
    if settings.canary_interval is None:
        return {"ran": False}
    # The tick and an operator's `schedules run` may overlap: one run at a time, and the
    # interval re-read once the lock is held, so a run that just finished counts.
    async with canary_runs.exclusive(context.database, settings) as holding:
        if not holding:
            return {"ran": False}
        async with context.session() as session:
            last = (await session.execute(select(func.max(CanaryRun.started_at)))).scalar_one()
        started = utcnow()
        if last is not None and started - last < settings.canary_interval:
            return {"ran": False}
        run = await run_once(settings.public_url, settings, service_token(settings))
        async with context.session() as session:
            canary_runs.record(session, run, started_at=started, origin="schedule")
    await alert(settings, settings.public_url, run)
    log.info("canary_run", ok=run.ok, failure=run.failure, breaches=run.breaches)
    return run.to_dict()


registry.schedule("canary.run", "* * * * *", "canary.run")


@registry.task("canary.cleanup", max_attempts=3)
async def canary_cleanup(context: JobContext) -> dict[str, int]:
    """Hourly: the canary's tenants after a day, its results after their retention."""
    async with context.session() as session:
        tenants = await canary_runs.delete_stale_tenants(session, CANARY_TENANT_LIFETIME)
        runs = await canary_runs.purge(session, context.settings.canary_retention)
    log.info("canary_cleanup", tenants=tenants, runs=runs)
    return {"tenants": tenants, "runs": runs}


registry.schedule("canary.cleanup", "41 * * * *", "canary.cleanup")
