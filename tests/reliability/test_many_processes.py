"""Three API processes and two workers on PostgreSQL and Redis, under one load: the rate limit
and the admission cap hold across the fleet, a slug is taken once, and every accepted job runs
exactly once."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.db import Database
from tenantry.models import Job, JobStatus
from tests.cli.test_servers import running
from tests.conftest import make_settings
from tests.fixtures.signup import signup_body
from tests.fixtures.workers import WorkerProcess, wait_for
from tests.reliability.world import served_env

pytestmark = pytest.mark.reliability

APIS, WORKERS = 3, 2
LIMIT = 10  # signups per address per hour, for the whole fleet
JOBS = 300  # over JOBS // CAP tenants, CAP each
CAP = 20  # in-flight jobs per tenant, for the whole fleet


async def finished(database: Database, ids: list[str]) -> int:
    async with database.session() as session:
        query = (
            select(func.count())
            .select_from(Job)
            .where(Job.id.in_(ids), Job.status == JobStatus.COMPLETED)
        )
        return int((await session.execute(query)).scalar_one())


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_fleet_keeps_limits_caps_slugs_and_jobs_whole(
    database_url: str,
    owner_database_url: str,
    fresh_redis_url: str,
    tmp_path: Path,
    worker_process: Callable[..., WorkerProcess],
    record_property: Callable[[str, object], None],
) -> None:
    """3 APIs and 2 workers: fleet-wide limit and cap, one slug winner, jobs run once each."""
    data_dir = tmp_path / "data"
    env = served_env(
        data_dir,
        database_url,
        TENANTRY_REDIS_URL=fresh_redis_url,
        TENANTRY_SIGNUP_LIMIT_PER_IP=f"{LIMIT}/hour",
        TENANTRY_ENQUEUE_MAX_INFLIGHT_PER_TENANT=str(CAP),
        TENANTRY_ENQUEUE_MAX_INFLIGHT_TOTAL="100000",
    )
    issuer = build_token_issuer(make_settings(data_dir, database_url=database_url))

    def admin_of(tenant_id: str) -> dict[str, str]:
        token, _ = issuer.mint(
            subject="usr_fleet",
            audience=Audience.TENANT,
            ttl=timedelta(minutes=15),
            roles=["admin"],
            tenant_id=tenant_id,
        )
        return {"Authorization": f"Bearer {token}"}

    def job(n: int) -> dict[str, object]:
        return {"kind": "canary.ping", "payload": {"n": n}}

    with ExitStack() as stack:
        bases = [
            stack.enter_context(running(["serve"], env, tmp_path, log=tmp_path / f"api-{n}.log"))[0]
            for n in range(APIS)
        ]
        turn = itertools.cycle(bases)
        async with httpx.AsyncClient(timeout=30) as http:

            def post(path: str, **kwargs: Any) -> asyncio.Future[httpx.Response]:
                return asyncio.ensure_future(http.post(f"{next(turn)}{path}", **kwargs))

            one_address = {"X-Forwarded-For": "198.51.100.90"}
            limited = await asyncio.gather(
                *(
                    post(
                        "/v1/signup",
                        json=signup_body(slug=f"fleet-{i}", email=f"f{i}@fleet{i}.example.com"),
                        headers=one_address,
                    )
                    for i in range(LIMIT * 3)
                )
            )
            raced = await asyncio.gather(
                *(
                    post(
                        "/v1/signup",
                        json=signup_body(slug="contested", email=f"c{i}@contest{i}.example.com"),
                        headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
                    )
                    for i in range(30)
                )
            )
            capped_auth = admin_of("ten_capped")  # no worker yet: nothing leaves the count
            capped = await asyncio.gather(
                *(
                    post("/v1/tenants/ten_capped/jobs", json=job(n), headers=capped_auth)
                    for n in range(CAP * 3)
                )
            )
            workers = [worker_process("--concurrency", "10") for _ in range(WORKERS)]
            tenants = [f"ten_fleet_{t}" for t in range(JOBS // CAP)]
            submitted = await asyncio.gather(
                *(
                    post(f"/v1/tenants/{tenant}/jobs", json=job(n), headers=admin_of(tenant))
                    for tenant in tenants
                    for n in range(CAP)
                )
            )
    limited_statuses = sorted(r.status_code for r in limited)
    assert limited_statuses == [201] * LIMIT + [429] * (LIMIT * 2), limited_statuses
    assert sorted(r.status_code for r in raced) == [201] + [409] * 29
    assert sorted(r.status_code for r in capped) == [202] * CAP + [429] * (CAP * 2)
    accepted = [r.json()["id"] for r in [*capped, *submitted] if r.status_code == 202]
    assert len(accepted) == JOBS + CAP, {r.status_code for r in submitted}
    database = Database(owner_database_url)
    try:

        async def all_ran() -> bool:
            return await finished(database, accepted) == len(accepted)

        await wait_for(all_ran, 60)
        async with database.session() as session:
            attempts = (
                await session.execute(select(Job.attempts).where(Job.id.in_(accepted)))
            ).scalars()
            assert set(attempts) == {1}, "a job ran twice"
    finally:
        await database.dispose()
    for worker in workers:
        assert "Traceback" not in worker.output()
    record_property(
        "load",
        f"{LIMIT * 3} signups from one address, 30 for one slug, {CAP * 3} jobs at a cap of "
        f"{CAP}, {JOBS} jobs over {len(tenants)} tenants",
    )
    record_property("faults", f"{APIS} API processes and {WORKERS} workers racing")
    record_property(
        "figure",
        f"{LIMIT} of {LIMIT * 3} signups and {CAP} of {CAP * 3} jobs admitted, 1 slug winner, "
        f"{JOBS + CAP} jobs run once each",
    )
