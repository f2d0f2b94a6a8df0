"""The worker in this process: exactly-once processing, retries, pause, leases, retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.job import service
from tenantry.kit.clock import clock
from tenantry.models import JobStatus
from tenantry.worker import queue, transitions
from tenantry.worker.queue import enqueue
from tests.fixtures.workers import (
    all_finished,
    enqueue_records,
    job_of,
    run_lines,
    running_worker,
    wait_for,
    wait_status,
)


class TestExactlyOnce:
    async def test_four_concurrent_workers_run_each_job_once(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        ids = await enqueue_records(database, runs, 300, tenants=7)
        databases = [Database(job_settings.resolved_database_url) for _ in range(4)]
        try:
            async with (
                running_worker(databases[0], job_settings, concurrency=8),
                running_worker(databases[1], job_settings, concurrency=8),
                running_worker(databases[2], job_settings, concurrency=8),
                running_worker(databases[3], job_settings, concurrency=8),
            ):
                await wait_for(lambda: all_finished(database))
        finally:
            for each in databases:
                await each.dispose()
        done = run_lines(runs)
        assert sorted(done) == sorted(ids)
        job = await job_of(database, ids[0])
        assert (
            job.status == JobStatus.COMPLETED and job.result == {"attempt": 1} and job.finished_at
        )


class TestRetries:
    async def test_fails_twice_then_completes_on_the_third_attempt(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(
                session, "test.flaky", {"path": str(runs), "failures": 2}, max_attempts=5
            )
        async with running_worker(database, job_settings):
            job = await wait_status(database, job_id, JobStatus.COMPLETED, JobStatus.FAILED)
        assert job.status == JobStatus.COMPLETED
        assert job.attempts == 3 and job.result == "finally"
        assert len(run_lines(runs, "try")) == 3

    async def test_always_failing_ends_failed_after_max_attempts_with_the_error(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(
                session, "test.flaky", {"path": str(runs), "failures": 99}, max_attempts=3
            )
        async with running_worker(database, job_settings):
            job = await wait_status(database, job_id, JobStatus.FAILED)
        assert job.attempts == 3
        assert job.last_error == "RuntimeError: failure number 3"
        assert len(run_lines(runs, "try")) == 3

    async def test_do_not_retry_fails_at_once(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(session, "test.no_retry", {"path": str(runs)}, max_attempts=5)
        async with running_worker(database, job_settings):
            job = await wait_status(database, job_id, JobStatus.FAILED)
        assert job.attempts == 1 and "never work" in (job.last_error or "")

    def test_backoff_is_exponential_with_full_jitter(self) -> None:
        from tenantry.worker.runner import backoff

        base, cap = timedelta(seconds=1), timedelta(seconds=60)
        samples = [backoff(4, base, cap) for _ in range(2000)]
        assert all(timedelta(0) <= s <= timedelta(seconds=8) for s in samples)
        assert max(samples) > timedelta(seconds=6) and min(samples) < timedelta(seconds=2)
        assert all(backoff(30, base, cap) <= cap for _ in range(100))


class TestPause:
    async def test_paused_queue_is_skipped_until_resumed(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        async with running_worker(database, job_settings) as worker:
            async with database.session() as session:
                await service.set_queue_paused(session, "bulk", True)
            await wait_for(lambda: asyncio.sleep(0, result="bulk" in worker._paused))
            async with database.session() as session:
                held = await enqueue(session, "test.record", {"path": str(runs)}, queue="bulk")
                passing = await enqueue(session, "test.record", {"path": str(runs)})
            await wait_status(database, passing, JobStatus.COMPLETED)
            assert (await job_of(database, held)).status == JobStatus.PENDING
            async with database.session() as session:
                await service.set_queue_paused(session, "bulk", False)
            await wait_status(database, held, JobStatus.COMPLETED)


class TestLeases:
    async def test_long_job_keeps_its_lease_and_runs_once(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        settings = job_settings.model_copy(update={"job_lease": timedelta(milliseconds=600)})
        async with database.session() as session:
            job_id = await enqueue(session, "test.sleep", {"path": str(runs), "seconds": 2})
        async with running_worker(database, settings):
            job = await wait_status(database, job_id, JobStatus.COMPLETED)
        assert job.attempts == 1
        assert len(run_lines(runs, "started")) == 1

    async def test_reaper_takes_back_expired_leases_only(self, database: Database) -> None:
        async with database.session() as session:
            stale = await enqueue(session, "canary.ping", {}, max_attempts=3)
        async with database.session() as session:
            (claimed,) = await transitions.claim(
                session, worker_id="lost", limit=1, lease=timedelta(seconds=30)
            )
        async with database.session() as session:
            assert await transitions.reap(session) == []  # still within its lease
        clock.advance(timedelta(seconds=31))
        async with database.session() as session:
            reaped = await transitions.reap(session)
        assert [(r.job_id, r.status) for r in reaped] == [(stale, JobStatus.PENDING)]
        job = await job_of(database, stale)
        assert job.worker_id is None and "lost its lease" in (job.last_error or "")
        # The lost worker's late outcome is dropped: someone else may hold it now.
        async with database.session() as session:
            await transitions.finish(
                session,
                worker_id="lost",
                outcomes=[queue.Outcome(claimed.id, claimed.attempts, JobStatus.COMPLETED)],
            )
        assert (await job_of(database, stale)).status == JobStatus.PENDING

    async def test_reaped_job_without_attempts_left_fails(self, database: Database) -> None:
        async with database.session() as session:
            job_id = await enqueue(session, "canary.ping", {}, max_attempts=1)
        async with database.session() as session:
            await transitions.claim(session, worker_id="lost", limit=1, lease=timedelta(seconds=1))
        clock.advance(timedelta(seconds=2))
        async with database.session() as session:
            (reaped,) = await transitions.reap(session)
        assert reaped.status == JobStatus.FAILED
        assert (await job_of(database, job_id)).finished_at is not None


class TestGracefulStop:
    async def test_running_job_finishes_within_the_grace_period(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(session, "test.sleep", {"path": str(runs), "seconds": 0.5})
        async with running_worker(database, job_settings):
            await wait_for(lambda: asyncio.sleep(0, result=bool(run_lines(runs, "started"))))
        assert (await job_of(database, job_id)).status == JobStatus.COMPLETED

    async def test_job_outliving_the_grace_period_is_released_uncounted(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        settings = job_settings.model_copy(
            update={"worker_shutdown_grace": timedelta(milliseconds=100)}
        )
        async with database.session() as session:
            job_id = await enqueue(session, "test.sleep", {"path": str(runs), "seconds": 60})
        async with running_worker(database, settings):
            await wait_for(lambda: asyncio.sleep(0, result=bool(run_lines(runs, "started"))))
        job = await job_of(database, job_id)
        assert (job.status, job.attempts, job.worker_id) == (JobStatus.PENDING, 0, None)


class TestRetention:
    async def test_finished_jobs_are_deleted_after_their_retention(
        self, database: Database, runs: Path
    ) -> None:
        async with database.session() as session:
            done = await enqueue(session, "canary.ping", {})
            failed = await enqueue(session, "canary.ping", {})
            cancelled = await enqueue(session, "canary.ping", {})
            pending = await enqueue(session, "canary.ping", {})
        async with database.session() as session:
            claimed = await transitions.claim(
                session, worker_id="w", limit=2, lease=timedelta(minutes=1)
            )
            by_id = {job.id: job for job in claimed}
            await transitions.finish(
                session,
                worker_id="w",
                outcomes=[
                    queue.Outcome(done, by_id[done].attempts, JobStatus.COMPLETED),
                    queue.Outcome(failed, by_id[failed].attempts, JobStatus.FAILED, error="x"),
                ],
            )
            await service.cancel_job(session, cancelled)
        clock.advance(timedelta(hours=25))
        report = await service.delete_finished(
            database, completed=timedelta(hours=24), failed=timedelta(days=7)
        )
        assert (report.completed_or_cancelled, report.failed) == (2, 0)
        clock.advance(timedelta(days=7))
        report = await service.delete_finished(
            database, completed=timedelta(hours=24), failed=timedelta(days=7)
        )
        assert (report.completed_or_cancelled, report.failed) == (0, 1)
        assert (await job_of(database, pending)).status == JobStatus.PENDING
        with pytest.raises(Exception, match="no job"):
            await job_of(database, done)
