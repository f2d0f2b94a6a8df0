"""Scheduled canary runs never overlap: the schedule's tick and an operator's `schedules run`
racing each other run the canary once (a lock per database, re-read under the lock)."""

from __future__ import annotations

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.ops.canary_runs import exclusive


async def test_one_holder_at_a_time_across_connections(
    database: Database, job_settings: Settings
) -> None:
    other = Database(job_settings.resolved_database_url)
    try:
        async with (
            exclusive(database, job_settings) as first,
            exclusive(other, job_settings) as second,
        ):
            assert (first, second) == (True, False)
        async with exclusive(other, job_settings) as again:
            assert again, "the lock outlived its holder"
    finally:
        await other.dispose()
