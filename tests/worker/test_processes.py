"""Worker processes: killed mid-task, stopped with SIGTERM, racing each other, woken by NOTIFY."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import JobStatus
from tenantry.worker.queue import JobSpec, enqueue, enqueue_many
from tests.fixtures.workers import (
    WorkerProcess,
    all_finished,
    enqueue_records,
    job_of,
    run_lines,
    running_worker,
    wait_for,
    wait_status,
)

StartWorker = Callable[..., WorkerProcess]


async def exited(worker: WorkerProcess) -> bool:
    return worker.process.poll() is not None


class TestKilledWorker:
    async def test_job_of_a_sigkilled_worker_is_completed_by_another(
        self, database: Database, job_settings: Settings, runs: Path, worker_process: StartWorker
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(session, "test.block_first", {"path": str(runs)})
            others = await enqueue_many(
                session, [JobSpec("test.record", {"path": str(runs)}) for _ in range(20)]
            )
        victim = worker_process()
        await wait_for(lambda: asyncio.sleep(0, result=job_id in run_lines(runs, "started")))
        victim.signal(signal.SIGKILL)
        await wait_for(lambda: exited(victim))
        assert (await job_of(database, job_id)).status == JobStatus.PROCESSING

        clock.advance(job_settings.job_lease + timedelta(seconds=1))  # its lease runs out
        async with running_worker(database, job_settings):
            await wait_for(lambda: all_finished(database))
        job = await job_of(database, job_id)
        assert (job.status, job.attempts, job.result) == (
            JobStatus.COMPLETED,
            2,
            "second time lucky",
        )
        assert run_lines(runs, "done").count(job_id) == 1
        # None lost. A job the dead worker had claimed was reaped and counts two
        # attempts; its handler ran twice only if the first run finished before the kill.
        done = run_lines(runs, "done")
        for other in others:
            job = await job_of(database, other)
            assert job.status == JobStatus.COMPLETED
            assert 1 <= done.count(other) <= job.attempts


class TestSigterm:
    async def test_finishes_running_jobs_and_exits_zero(
        self, database: Database, runs: Path, worker_process: StartWorker
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(session, "test.sleep", {"path": str(runs), "seconds": 1})
        worker = worker_process()
        await wait_for(lambda: asyncio.sleep(0, result=job_id in run_lines(runs, "started")))
        worker.signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.process.wait, 30) == 0, worker.output()
        assert (await job_of(database, job_id)).status == JobStatus.COMPLETED
        assert "worker_stopped" in worker.output()

    async def test_releases_what_outlives_the_grace_period(
        self, database: Database, runs: Path, worker_process: StartWorker
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(session, "test.sleep", {"path": str(runs), "seconds": 600})
        worker = worker_process(TENANTRY_WORKER_SHUTDOWN_GRACE="1")
        await wait_for(lambda: asyncio.sleep(0, result=job_id in run_lines(runs, "started")))
        worker.signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.process.wait, 30) == 0, worker.output()
        job = await job_of(database, job_id)
        assert (job.status, job.attempts) == (JobStatus.PENDING, 0)


@pytest.mark.parametrize("backend", ["postgres"])
class TestPostgresProcesses:
    async def test_two_worker_processes_run_each_job_exactly_once(
        self, database: Database, runs: Path, worker_process: StartWorker
    ) -> None:
        first, second = worker_process("--concurrency", "20"), worker_process("--concurrency", "20")
        await wait_for(
            lambda: asyncio.sleep(
                0, result=(first.output() + second.output()).count("worker_started") == 2
            )
        )
        ids = await enqueue_records(database, runs, 400, tenants=5)
        await wait_for(lambda: all_finished(database))
        assert sorted(run_lines(runs)) == sorted(ids)
        for worker in (first, second):
            worker.signal(signal.SIGTERM)
            assert await asyncio.to_thread(worker.process.wait, 30) == 0

    async def test_notify_wakes_an_idle_worker_and_survives_a_reconnect(
        self, database: Database, job_settings: Settings, runs: Path
    ) -> None:
        # Polling every 10 minutes: only NOTIFY can bring these jobs in time.
        settings = job_settings.model_copy(update={"job_poll_interval": timedelta(minutes=10)})
        other_process = Database(
            settings.resolved_database_url
        )  # enqueues bypass the in-process wake
        try:
            async with running_worker(Database(settings.resolved_database_url), settings) as worker:
                await wait_for(lambda: listening(database))
                async with other_process.session(cross_tenant="test enqueue") as session:
                    first = await enqueue(session, "test.record", {"path": str(runs)})
                await wait_status(database, first, JobStatus.COMPLETED)

                async with database.session() as session:
                    await session.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                        )
                    )
                await wait_for(lambda: listening(database))
                async with other_process.session(cross_tenant="test enqueue") as session:
                    second = await enqueue(session, "test.record", {"path": str(runs)})
                await wait_status(database, second, JobStatus.COMPLETED)
                await worker.database.dispose()
        finally:
            await other_process.dispose()


async def listening(database: Database) -> bool:
    async with database.session() as session:
        count = await session.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
        )
        return int(count.scalar_one()) > 0
