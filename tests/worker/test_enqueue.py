"""Enqueueing writes a row in the caller's transaction, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tenantry.db import Database
from tenantry.models import Job, JobStatus
from tenantry.worker.queue import JobSpec, enqueue, enqueue_many
from tenantry.worker.registry import UnknownJobKind


async def count_jobs(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(select(func.count()).select_from(Job))).scalar_one())


class TestOutbox:
    async def test_rolled_back_transaction_leaves_no_job(self, database: Database) -> None:
        with pytest.raises(RuntimeError):
            async with database.session() as session:
                await enqueue(session, "canary.ping", {"x": 1})
                raise RuntimeError("the state change failed")
        assert await count_jobs(database) == 0

    async def test_committed_transaction_leaves_one_pending_job(self, database: Database) -> None:
        async with database.session() as session:
            job_id = await enqueue(
                session, "canary.ping", {"x": 1}, tenant_id="ten_a", queue="q", priority=3
            )
        async with database.session() as session:
            job = await session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.kind, job.tenant_id, job.queue, job.priority) == (
            JobStatus.PENDING,
            "canary.ping",
            "ten_a",
            "q",
            3,
        )
        assert job.payload == {"x": 1} and job.attempts == 0 and job.max_attempts == 1

    async def test_unknown_kind_is_refused(self, database: Database) -> None:
        with pytest.raises(UnknownJobKind):
            async with database.session() as session:
                await enqueue(session, "no.such.kind", {})


class TestIdempotency:
    async def test_same_key_same_tenant_and_kind_is_one_job(self, database: Database) -> None:
        async with database.session() as session:
            first = await enqueue(
                session, "canary.ping", {}, tenant_id="ten_a", idempotency_key="k1"
            )
        async with database.session() as session:
            again = await enqueue(
                session, "canary.ping", {}, tenant_id="ten_a", idempotency_key="k1"
            )
        assert first == again
        assert await count_jobs(database) == 1

    async def test_key_is_scoped_by_tenant_and_kind(self, database: Database, runs: Path) -> None:
        async with database.session() as session:
            ids = {
                await enqueue(session, "canary.ping", {}, tenant_id="ten_a", idempotency_key="k"),
                await enqueue(session, "canary.ping", {}, tenant_id="ten_b", idempotency_key="k"),
                await enqueue(session, "canary.ping", {}, idempotency_key="k"),
                await enqueue(session, "canary.ping", {}, idempotency_key="k"),
                await enqueue(session, "test.record", {"path": str(runs)}, idempotency_key="k"),
            }
        assert len(ids) == 4
        assert await count_jobs(database) == 4

    async def test_batch_enqueue(self, database: Database) -> None:
        specs = [JobSpec("canary.ping", {"i": i}, tenant_id=f"ten_{i % 4}") for i in range(500)]
        async with database.session() as session:
            ids = await enqueue_many(session, specs)
        assert len(set(ids)) == 500
        assert await count_jobs(database) == 500
