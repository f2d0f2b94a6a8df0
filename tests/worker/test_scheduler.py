"""Cron schedules: each tick fires once across racing workers; missed ticks fire once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import Job, Schedule
from tenantry.worker import scheduler
from tenantry.worker.registry import TaskRegistry, registry


@pytest.fixture
def tasks(runs: Path) -> TaskRegistry:
    """A registry of its own, so these schedules never fire in other tests."""
    local = TaskRegistry()
    local.schedule("test.minutely", "* * * * *", "test.record", {"path": str(runs)})
    return local


@pytest.fixture
async def workers(job_settings: Settings) -> AsyncIterator[list[Database]]:
    """Three workers' own connections."""
    databases = [Database(job_settings.resolved_database_url) for _ in range(3)]
    yield databases
    for database in databases:
        await database.dispose()


async def fired_jobs(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(select(func.count()).select_from(Job))).scalar_one())


def align_clock_to_minute() -> None:
    """Move the clock to 10 s past a minute, so one advance of a minute crosses one tick."""
    now = datetime.now(UTC)
    clock.advance(timedelta(seconds=70 - now.second - now.microsecond / 1e6))


async def test_each_tick_fires_once_with_three_workers_racing(
    database: Database, workers: list[Database], tasks: TaskRegistry
) -> None:
    align_clock_to_minute()
    await asyncio.gather(*(scheduler.sync_schedules(w, tasks) for w in workers))
    for tick in range(1, 4):
        clock.advance(timedelta(minutes=1))
        results = await asyncio.gather(*(scheduler.fire_due(w, tasks) for w in workers))
        assert sorted(len(r) for r in results) == [0, 0, 1]
        assert await fired_jobs(database) == tick


async def test_missed_ticks_fire_once_on_start(database: Database, tasks: TaskRegistry) -> None:
    align_clock_to_minute()
    await scheduler.sync_schedules(database, tasks)
    clock.advance(timedelta(hours=3))  # no worker ran for 180 ticks
    assert len(await scheduler.fire_due(database, tasks)) == 1
    assert await scheduler.fire_due(database, tasks) == []
    async with database.session() as session:
        row = await session.get(Schedule, "test.minutely")
    assert row is not None and row.next_run_at > clock.now()


async def test_run_now_and_listing(database: Database, tasks: TaskRegistry) -> None:
    await scheduler.sync_schedules(database, tasks)
    async with database.session() as session:
        job_id = await scheduler.run_now(session, tasks, "test.minutely")
    async with database.session() as session:
        (view,) = await scheduler.list_schedules(session, tasks)
    assert (view.name, view.cron, view.kind, view.last_outcome) == (
        "test.minutely",
        "* * * * *",
        "test.record",
        "PENDING",
    )
    assert view.last_run_at is not None
    async with database.session() as session:
        assert (await session.get(Job, job_id)) is not None
        with pytest.raises(scheduler.UnknownSchedule):
            await scheduler.run_now(session, tasks, "no.such.schedule")


async def test_a_changed_cron_restarts_the_clock(database: Database, runs: Path) -> None:
    first, second = TaskRegistry(), TaskRegistry()
    first.schedule("test.s", "0 0 1 1 *", "test.record", {"path": str(runs)})
    second.schedule("test.s", "* * * * *", "test.record", {"path": str(runs)})
    await scheduler.sync_schedules(database, first)
    await scheduler.sync_schedules(database, second)
    async with database.session() as session:
        row = await session.get(Schedule, "test.s")
    assert row is not None and row.cron == "* * * * *"
    assert row.next_run_at - clock.now() <= timedelta(minutes=1)


def test_cleanup_is_scheduled_by_default() -> None:
    import tenantry.worker.tasks  # noqa: F401

    assert any(spec.name == "jobs.cleanup" for spec in registry.schedules())
