"""Folding the funnel's hourly rollup, so that reading a month stays a few thousand rows."""

from __future__ import annotations

import structlog

from tenantry.event import counts
from tenantry.worker.registry import JobContext, registry

log = structlog.get_logger(__name__)


@registry.task("events.fold_counts", max_attempts=3)
async def fold_counts(context: JobContext) -> dict[str, int]:
    async with context.session() as session:
        rows = await counts.fold(session)
    log.info("event_counts_folded", rows=rows)
    return {"rows": rows}


registry.schedule("events.fold_counts", "*/5 * * * *", "events.fold_counts")
