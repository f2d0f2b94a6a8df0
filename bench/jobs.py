"""Job queue benchmark: enqueue and drain no-op jobs, pickup latency, worker memory.

SQLite runs as `tenantry up` does (the worker in the enqueuing process, woken
in process); PostgreSQL with a separate `tenantry worker` process, woken by
NOTIFY. Peers drain the same workload on the same PostgreSQL (bench/peers.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

import bench.kinds  # noqa: F401  (registers bench.noop)
from bench.harness import BIN, ROOT, rss_mb
from tenantry import schema
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import Job, JobStatus
from tenantry.worker.queue import JobSpec, enqueue, enqueue_many
from tenantry.worker.registry import load_task_modules
from tenantry.worker.runner import Worker

JOBS = int(os.environ.get("BENCH_JOBS", "20000"))
MEMORY_JOBS = int(os.environ.get("BENCH_MEMORY_JOBS", "200000"))
BATCH = 1000
PICKUP_SAMPLES = 100
CONCURRENCY = 500  # a worker claims as many jobs at once as it may run


@dataclass
class QueueRun:
    backend: str
    enqueue_per_s: float
    drain_per_s: float
    pickup_p50_ms: float
    pickup_p99_ms: float


def settings_for(url: str, data_dir: str) -> Settings:
    return Settings(_env_file=None, database_url=url, data_dir=Path(data_dir))  # type: ignore[call-arg]


async def count(database: Database, status: JobStatus | None = None) -> int:
    async with database.session(cross_tenant="bench") as session:
        query = select(func.count()).select_from(Job)
        if status is not None:
            query = query.where(Job.status == status.value)
        return int((await session.execute(query)).scalar_one())


async def enqueue_batches(database: Database, total: int) -> float:
    """Jobs per second, a transaction per batch of BATCH, tenants spread over 50."""
    started = time.perf_counter()
    for first in range(0, total, BATCH):
        specs = [
            JobSpec("bench.noop", {}, tenant_id=f"ten_{i % 50}")
            for i in range(first, min(total, first + BATCH))
        ]
        async with database.session(cross_tenant="bench") as session:
            await enqueue_many(session, specs)
    return total / (time.perf_counter() - started)


async def wait_drained(database: Database, total: int) -> float:
    """Drain rate: jobs completed per second between the first and the last completion seen."""
    first_seen: tuple[float, int] | None = None
    while True:
        done = await count(database, JobStatus.COMPLETED)
        now = time.perf_counter()
        if first_seen is None and done > 0:
            first_seen = (now, done)
        if done >= total:
            assert first_seen is not None
            elapsed = now - first_seen[0]
            return (total - first_seen[1]) / elapsed if elapsed > 0 else float("inf")
        await asyncio.sleep(0.01)


async def pickup_latencies(database: Database) -> list[float]:
    """Milliseconds from due to claimed, for single jobs enqueued while the worker idles."""
    samples = []
    for _ in range(PICKUP_SAMPLES):
        async with database.session(cross_tenant="bench") as session:
            job_id = await enqueue(session, "bench.noop", {})
        while True:
            async with database.session(cross_tenant="bench") as session:
                job = await session.get(Job, job_id)
            if job is not None and job.status == JobStatus.COMPLETED:
                break
            await asyncio.sleep(0.002)
        assert job.started_at is not None
        samples.append((job.started_at - job.run_at).total_seconds() * 1000)
        await asyncio.sleep(0.02)  # let the worker go idle again
    return samples


def percentile(samples: list[float], p: float) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]
        if len(samples) > 1
        else samples[0]
    )


async def sqlite_run() -> QueueRun:
    with tempfile.TemporaryDirectory() as data_dir:
        url = f"sqlite:///{data_dir}/bench.db"
        await schema.upgrade(url)
        settings = settings_for(url, data_dir)
        load_task_modules(settings)
        database = Database(url)
        enqueue_rate = await enqueue_batches(database, JOBS)
        worker = Worker(database, settings, concurrency=CONCURRENCY)
        running = asyncio.create_task(worker.run())
        drain_rate = await wait_drained(database, JOBS)
        pickups = await pickup_latencies(database)
        worker.stop()
        await running
        await database.dispose()
    return QueueRun(
        "SQLite (embedded worker)",
        enqueue_rate,
        drain_rate,
        percentile(pickups, 50),
        percentile(pickups, 99),
    )


@contextmanager
def worker_process(url: str, data_dir: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TENANTRY_DATABASE_URL": url,
        "TENANTRY_DATA_DIR": data_dir,
        "TENANTRY_JOB_MODULES": "bench.kinds",
        "TENANTRY_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [str(BIN / "tenantry"), "worker", "--concurrency", str(CONCURRENCY)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


async def postgres_run(url: str) -> tuple[QueueRun, tuple[float, float]]:
    """The PostgreSQL row, and the worker's RSS after JOBS and after MEMORY_JOBS jobs."""
    await schema.upgrade(url)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = settings_for(url, data_dir)
        load_task_modules(settings)
        database = Database(url)
        enqueue_rate = await enqueue_batches(database, JOBS)
        with worker_process(url, data_dir) as process:
            drain_rate = await wait_drained(database, JOBS)
            pickups = await pickup_latencies(database)
            rss_first = rss_mb(process.pid)
            done = await count(database, JobStatus.COMPLETED)
            remaining = MEMORY_JOBS - JOBS
            while remaining > 0:
                chunk = min(remaining, 20_000)
                await enqueue_batches(database, chunk)
                remaining -= chunk
            await wait_drained(database, done + MEMORY_JOBS - JOBS)
            rss_after = rss_mb(process.pid)
        await database.dispose()
    row = QueueRun(
        "PostgreSQL (worker process)",
        enqueue_rate,
        drain_rate,
        percentile(pickups, 50),
        percentile(pickups, 99),
    )
    return row, (rss_first, rss_after)


def table(
    rows: list[QueueRun], peers: list[tuple[str, float | None, str]], memory: tuple[float, float]
) -> str:
    postgres = next(r for r in rows if r.backend.startswith("PostgreSQL"))
    lines = [
        "### Job queue",
        "",
        f"No-op jobs: {JOBS:,} enqueued in batches of {BATCH}, then drained by one worker "
        f"(concurrency {CONCURRENCY}); pickup over {PICKUP_SAMPLES} single jobs enqueued "
        "while the worker idles.",
        "",
        "| backend | enqueue jobs/s | drain jobs/s | pickup p50 ms | pickup p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = [
            r.backend,
            f"{r.enqueue_per_s:,.0f}",
            f"{r.drain_per_s:,.0f}",
            f"{r.pickup_p50_ms:.2f}",
            f"{r.pickup_p99_ms:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Peers on the same PostgreSQL, same workload, one process each:",
        "",
        "| peer | drain jobs/s | Tenantry / peer |",
        "| --- | ---: | ---: |",
    ]
    for name, rate, note in peers:
        if rate is None:
            lines.append(f"| {name} | n/a ({note}) | - |")
        else:
            lines.append(f"| {name} | {rate:,.0f} | {postgres.drain_per_s / rate:.2f} |")
    first, after = memory
    lines += [
        "",
        f"Worker RSS after {JOBS:,} jobs: {first:.0f} MB; after {MEMORY_JOBS:,}: {after:.0f} MB "
        f"({(after / first - 1) * 100:+.1f} %; goal within 10 %).",
    ]
    return "\n".join(lines)
