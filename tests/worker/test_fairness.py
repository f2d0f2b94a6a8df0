"""Fair claims: one tenant's backlog cannot hold back another tenant's job."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from tenantry.db import Database
from tenantry.models import Job
from tenantry.worker import queue, transitions
from tenantry.worker.queue import JobSpec, enqueue, enqueue_many

BATCH = 10


async def claim_round(database: Database) -> list[queue.ClaimedJob]:
    async with database.session() as session:
        return await transitions.claim(
            session, worker_id="w", limit=BATCH, lease=timedelta(minutes=5)
        )


async def test_a_single_job_overtakes_a_backlog_of_ten_thousand(database: Database) -> None:
    async with database.session() as session:
        await enqueue_many(
            session,
            [JobSpec("canary.ping", {"n": i}, tenant_id="ten_noisy") for i in range(10_000)],
        )
    await claim_round(database)  # the noisy tenant is already being served
    async with database.session() as session:
        quiet = await enqueue(session, "canary.ping", {}, tenant_id="ten_quiet")
    rounds = 0
    while True:
        rounds += 1
        if quiet in {job.id for job in await claim_round(database)}:
            break
        assert rounds < 3, "the quiet tenant's job waited more than two claim rounds"
    assert rounds == 1


async def test_backlogged_tenants_are_served_in_turn(database: Database) -> None:
    async with database.session() as session:
        await enqueue_many(
            session, [JobSpec("canary.ping", {}, tenant_id="ten_a") for _ in range(300)]
        )
    async with database.session() as session:
        await enqueue_many(
            session, [JobSpec("canary.ping", {}, tenant_id="ten_b") for _ in range(300)]
        )
        await enqueue_many(
            session, [JobSpec("canary.ping", {}, tenant_id="ten_c") for _ in range(30)]
        )
    served: Counter[str | None] = Counter()
    for _ in range(6):
        served.update(job.tenant_id for job in await claim_round(database))
    assert served == {"ten_a": 20, "ten_b": 20, "ten_c": 20}


async def test_priority_goes_first_and_order_is_kept_within_a_tenant(database: Database) -> None:
    async with database.session() as session:
        ordinary = [
            await enqueue(session, "canary.ping", {"n": i}, tenant_id="ten_a") for i in range(5)
        ]
        urgent = await enqueue(session, "canary.ping", {}, tenant_id="ten_a", priority=-1)
    claimed = [job.id for job in await claim_round(database)]
    assert claimed == [urgent, *ordinary]


async def test_a_job_is_claimed_once(database: Database) -> None:
    async with database.session() as session:
        await enqueue_many(session, [JobSpec("canary.ping", {}) for _ in range(35)])
    first, second = await claim_round(database), await claim_round(database)
    assert not {j.id for j in first} & {j.id for j in second}
    async with database.session() as session:
        attempts = (
            await session.execute(select(Job.attempts).where(Job.id == first[0].id))
        ).scalar_one()
    assert attempts == 1
