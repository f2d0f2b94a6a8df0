"""Scheduled housekeeping of access control: revocations past use, denials past retention."""

from __future__ import annotations

import structlog

from tenantry.auth import denials, revocation
from tenantry.auth.revision import bump_revision
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)


@registry.task("auth.cleanup", max_attempts=3)
async def auth_cleanup(context: JobContext) -> dict[str, int]:
    async with context.session() as session:
        revocations = await revocation.delete_expired(session)
        if revocations:
            await bump_revision(session)  # processes drop them from memory too
        old_denials = await denials.delete_old(session)
    report = {"revocations_deleted": revocations, "denials_deleted": old_denials}
    log.info("auth_cleanup", **report)
    return report


registry.schedule("auth.cleanup", "7 * * * *", "auth.cleanup")
