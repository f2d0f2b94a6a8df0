"""Scheduled signup housekeeping: expire lapsed sessions, delete stale ones."""

from __future__ import annotations

import dataclasses

import structlog

from tenantry.metrics import SIGNUP_SESSIONS_PURGED
from tenantry.signup import service
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)


@registry.task("signup.purge", max_attempts=3)
async def purge_signups(context: JobContext) -> dict[str, int]:
    async with context.session() as session:
        report = await service.expire_and_purge(session, context.settings)
    SIGNUP_SESSIONS_PURGED.labels("expired").inc(report.expired)
    SIGNUP_SESSIONS_PURGED.labels("deleted").inc(report.deleted)
    log.info("signup_purge", **dataclasses.asdict(report))
    return dataclasses.asdict(report)


registry.schedule("signup.purge", "*/5 * * * *", "signup.purge")
