"""The daily integrity check: findings logged and counted, nothing repaired without an
operator (`tenantry integrity check --fix`)."""

from __future__ import annotations

import structlog

from tenantry.ops import integrity
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)


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
