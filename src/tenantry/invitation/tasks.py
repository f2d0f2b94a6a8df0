"""The invitation sweep: expire pending invitations past their TTL and purge old ones."""

from __future__ import annotations

import dataclasses

import structlog

from tenantry.invitation import service
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)


@registry.task("invitations.sweep", max_attempts=3)
async def invitations_sweep(context: JobContext) -> dict[str, int]:
    async with context.session() as session:
        report = dataclasses.asdict(await service.sweep(session, context.settings))
    log.info("invitations_sweep", **report)
    return report


registry.schedule("invitations.sweep", "*/15 * * * *", "invitations.sweep")
