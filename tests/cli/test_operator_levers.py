"""The runbook's remaining levers as commands: a periodic task disabled and enabled again,
finished jobs cleaned ahead of their retention, and a slug's state told; each action audited."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.models import AuditRecord, Job, JobStatus, Schedule, SignupStatus
from tenantry.worker import scheduler
from tenantry.worker.queue import enqueue
from tenantry.worker.registry import registry
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_signup, create_tenant


async def actions(database: Database) -> list[tuple[str, str, str | None]]:
    async with database.session() as session:
        rows = await session.execute(
            select(AuditRecord.action, AuditRecord.target, AuditRecord.reason).order_by(
                AuditRecord.seq
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


class TestSchedules:
    async def test_a_disabled_schedule_skips_its_ticks_until_enabled(
        self, database: Database, settings: Settings
    ) -> None:
        await scheduler.sync_schedules(database, registry)
        code, output = await run_tenantry(
            settings, "schedules", "disable", "jobs.cleanup", "--reason", "stuck retrying"
        )
        assert code == 0, output
        async with database.session() as session:
            await session.execute(update(Schedule).values(next_run_at=utcnow() - timedelta(1)))
        fired = await scheduler.fire_due(database, registry)
        async with database.session() as session:
            kinds = (await session.execute(select(Job.kind).where(Job.id.in_(fired)))).scalars()
            assert "jobs.cleanup" not in set(kinds)
        code, output = await run_tenantry(settings, "schedules", "list", "--json")
        (row,) = [r for r in json.loads(output) if r["name"] == "jobs.cleanup"]
        assert row["enabled"] is False

        assert (await run_tenantry(settings, "schedules", "enable", "jobs.cleanup"))[0] == 0
        async with database.session() as session:
            enabled = await session.get(Schedule, "jobs.cleanup")
            assert enabled is not None and enabled.enabled and enabled.next_run_at > utcnow()
        assert await actions(database) == [
            ("schedule.disable", "jobs.cleanup", "stuck retrying"),
            ("schedule.enable", "jobs.cleanup", None),
        ]

    async def test_disabling_takes_a_known_name_and_no_required_reason(
        self, database: Database, settings: Settings
    ) -> None:
        code, output = await run_tenantry(settings, "schedules", "disable", "nope", "--reason", "x")
        assert code == 1 and "no schedule 'nope'" in output
        await scheduler.sync_schedules(database, registry)
        assert (await run_tenantry(settings, "schedules", "disable", "jobs.cleanup"))[0] == 0
        assert await actions(database) == [("schedule.disable", "jobs.cleanup", None)]


async def test_jobs_clean_deletes_finished_jobs_past_the_age(
    database: Database, settings: Settings
) -> None:
    async with database.session() as session:
        ids = [await enqueue(session, "canary.ping", {}) for _ in range(3)]
        old, recent, other = ids
        finished = {old: timedelta(days=2), recent: timedelta(hours=1), other: timedelta(days=2)}
        for job_id, age in finished.items():
            status = JobStatus.FAILED if job_id != other else JobStatus.COMPLETED
            await session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(status=status.value, finished_at=utcnow() - age)
            )
    code, output = await run_tenantry(
        settings, "jobs", "clean", "--status", "failed", "--older-than", "24h", "--reason", "noise"
    )
    assert code == 0 and "1 failed jobs deleted" in output, output
    async with database.session() as session:
        left = set((await session.execute(select(Job.id))).scalars())
    assert left == {recent, other}
    assert await actions(database) == [("jobs.clean", "failed older than 24h", "noise")]


async def test_slugs_check_tells_free_reserved_invalid_and_held(
    database: Database, settings: Settings
) -> None:
    tenant = await create_tenant(database, slug="taken")
    signup = await create_signup(database, status=SignupStatus.REVIEW_REQUIRED, slug="pending")

    async def check(slug: str) -> tuple[int, dict[str, str]]:
        code, output = await run_tenantry(settings, "slugs", "check", slug, "--json")
        return code, json.loads(output)

    assert (await check("fresh-one"))[1]["state"] == "free"
    assert (await check("fresh-one"))[0] == 0
    assert (await check("admin"))[1]["state"] == "reserved"
    code, invalid = await check("no--double")
    assert (code, invalid["state"]) == (1, "invalid")
    held = (await check("taken"))[1]
    assert (held["state"], held["holder"]) == ("held", tenant.id)
    held = (await check("pending"))[1]
    assert (held["holder"], held["holder_status"]) == (signup.id, "REVIEW_REQUIRED")
    async with database.session() as session:
        assert (await session.execute(select(func.count(AuditRecord.seq)))).scalar() == 0
