"""Fixtures for the job engine: a database, workers in this process and in others."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import tests.worker.kinds  # noqa: F401  (registers the test kinds)
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.job import service
from tenantry.models import Job, JobStatus
from tenantry.worker.queue import JobSpec, enqueue_many
from tenantry.worker.registry import load_task_modules
from tenantry.worker.runner import Worker
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
TENANTRY = str(Path(sys.executable).parent / "tenantry")
WAIT_TIMEOUT_S = 30


@pytest.fixture
def job_settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "data",
        database_url=database_url,
        job_backoff_base=timedelta(milliseconds=10),
        job_backoff_max=timedelta(milliseconds=50),
        job_poll_interval=timedelta(milliseconds=200),
    )


@pytest.fixture
async def database(job_settings: Settings) -> AsyncIterator[Database]:
    load_task_modules(job_settings)
    database = Database(job_settings.resolved_database_url)
    yield database
    await database.dispose()


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """The file test kinds append their runs to."""
    path = tmp_path / "runs.log"
    path.touch()
    return path


async def enqueue_records(database: Database, runs: Path, count: int, tenants: int) -> list[str]:
    """`count` test.record jobs spread over `tenants` tenants; their ids."""
    specs = [
        JobSpec("test.record", {"path": str(runs)}, tenant_id=f"ten_{i % tenants}")
        for i in range(count)
    ]
    async with database.session() as session:
        return await enqueue_many(session, specs)


def run_lines(path: Path, event: str = "done") -> list[str]:
    return [
        line.split()[1] for line in path.read_text().splitlines() if line.startswith(event + " ")
    ]


async def wait_for(
    condition: Callable[[], Awaitable[bool]], limit_s: float = WAIT_TIMEOUT_S
) -> None:
    """Poll a condition that another task or process will make true: there is nothing to await."""
    async with asyncio.timeout(limit_s):
        while not await condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def job_of(database: Database, job_id: str) -> Job:
    async with database.session() as session:
        return await service.get_job(session, job_id)


async def wait_status(database: Database, job_id: str, *statuses: JobStatus) -> Job:
    async def reached() -> bool:
        return (await job_of(database, job_id)).status in statuses

    await wait_for(reached)
    return await job_of(database, job_id)


async def all_finished(database: Database) -> bool:
    async with database.session() as session:
        stats = await service.queue_stats(session)
    return not any(s.status in (JobStatus.PENDING, JobStatus.PROCESSING) for s in stats)


@asynccontextmanager
async def running_worker(
    database: Database, settings: Settings, **options: Any
) -> AsyncIterator[Worker]:
    worker = Worker(database, settings, **options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await task


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def worker_process(
    job_settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `tenantry worker` processes on the test's database."""
    started: list[WorkerProcess] = []

    def start(*args: str, **env: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")},
            "PYTHONPATH": str(ROOT),
            "TENANTRY_DATA_DIR": str(job_settings.data_dir),
            "TENANTRY_DATABASE_URL": job_settings.resolved_database_url,
            "TENANTRY_JOB_MODULES": "tests.worker.kinds",
            "TENANTRY_JOB_POLL_INTERVAL": "1",
            **env,
        }
        handle = log.open("wb")
        process = subprocess.Popen(
            [TENANTRY, "worker", *args], env=environment, stdout=handle, stderr=handle
        )
        started.append(WorkerProcess(process, log))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)
