"""Built-in task kinds and schedules."""

from __future__ import annotations

import dataclasses
from typing import Any

import structlog

from tenantry.job import service as job_service
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)


@registry.task("canary.ping", tenant_submittable=True, max_attempts=1)
async def canary_ping(context: JobContext) -> Any:
    """Completes at once with its payload as result: proves the queue end to end."""
    return context.payload


@registry.task("jobs.cleanup", max_attempts=3)
async def jobs_cleanup(context: JobContext) -> dict[str, int]:
    """Delete finished jobs past their retention."""
    report = await job_service.delete_finished(
        context.database,
        completed=context.settings.job_retention_completed,
        failed=context.settings.job_retention_failed,
    )
    log.info("jobs_cleanup", **dataclasses.asdict(report))
    return dataclasses.asdict(report)


registry.schedule("jobs.cleanup", "*/10 * * * *", "jobs.cleanup")
