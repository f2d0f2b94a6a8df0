"""The jobs API: submit, read, list, cancel, and the admission caps under concurrency."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.models import Event, Job, JobStatus
from tenantry.worker.queue import enqueue
from tests.conftest import AppFactory, make_settings
from tests.fixtures.workers import running_worker, wait_for
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem


def admin_token(settings: Settings, tenant_id: str) -> str:
    token, _ = build_token_issuer(settings).mint(
        subject=f"usr_{tenant_id}",
        audience=Audience.TENANT,
        ttl=timedelta(minutes=15),
        roles=["admin"],
        tenant_id=tenant_id,
    )
    return token


def submit(
    api: httpx.AsyncClient, settings: Settings, tenant_id: str, **extra: object
) -> asyncio.Future[httpx.Response]:
    body = {"kind": "canary.ping", "payload": {"n": 1}, **extra}
    return asyncio.ensure_future(
        api.post(
            f"/v1/tenants/{tenant_id}/jobs",
            json=body,
            headers=auth(admin_token(settings, tenant_id)),
        )
    )


class TestLifecycle:
    async def test_submit_run_read_list(
        self, api: httpx.AsyncClient, signup_settings: Settings, database: Database
    ) -> None:
        submitted = await submit(api, signup_settings, "ten_a", payload={"hello": "world"})
        assert submitted.status_code == 202, submitted.text
        job = submitted.json()
        assert job["status"] == "PENDING" and job["id"].startswith("job_")
        path = f"/v1/tenants/ten_a/jobs/{job['id']}"
        headers = auth(admin_token(signup_settings, "ten_a"))

        async with running_worker(database, signup_settings):

            async def done() -> bool:
                return (await api.get(path, headers=headers)).json()["status"] == "COMPLETED"

            await wait_for(done)
        read = (await api.get(path, headers=headers)).json()
        assert read["result"] == {"hello": "world"} and read["attempts"] == 1
        assert read["started_at"] and read["finished_at"]

        listed = (await api.get("/v1/tenants/ten_a/jobs?status=COMPLETED", headers=headers)).json()
        assert [row["id"] for row in listed["data"]] == [job["id"]]
        none = await api.get("/v1/tenants/ten_a/jobs?kind=other", headers=headers)
        assert none.json()["data"] == []
        async with database.session() as session:
            types = await session.execute(select(Event.type).where(Event.subject_id == job["id"]))
            assert list(types.scalars()) == ["job.Submitted"]

    async def test_list_pages_newest_first(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        ids = [(await submit(api, signup_settings, "ten_a")).json()["id"] for _ in range(3)]
        headers = auth(admin_token(signup_settings, "ten_a"))
        first = (await api.get("/v1/tenants/ten_a/jobs?limit=2", headers=headers)).json()
        rest = await api.get(
            f"/v1/tenants/ten_a/jobs?limit=2&cursor={first['next_cursor']}", headers=headers
        )
        seen = [row["id"] for row in first["data"] + rest.json()["data"]]
        assert seen == ids[::-1] and rest.json()["next_cursor"] is None

    async def test_cancel_only_pending(
        self, api: httpx.AsyncClient, signup_settings: Settings, database: Database
    ) -> None:
        job = (await submit(api, signup_settings, "ten_a")).json()
        headers = auth(admin_token(signup_settings, "ten_a"))
        path = f"/v1/tenants/ten_a/jobs/{job['id']}/cancel"
        cancelled = await api.post(path, headers=headers)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
        assert cancelled.json()["finished_at"]
        assert_problem(await api.post(path, headers=headers), 409, "JOB_STATE")

    async def test_unknown_and_internal_kinds(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        for kind in ("no.such.kind", "mail.send", "jobs.cleanup"):
            response = await submit(api, signup_settings, "ten_a", kind=kind)
            assert_problem(response, 400, "UNKNOWN_JOB_KIND")
        assert_problem(await submit(api, signup_settings, "ten_a", kind=""), 400, "VALIDATION")
        assert_problem(await submit(api, signup_settings, "ten_a", payload=[1]), 400, "VALIDATION")

    async def test_platform_jobs_and_other_tenants_jobs_are_not_found(
        self, api: httpx.AsyncClient, signup_settings: Settings, database: Database
    ) -> None:
        theirs = (await submit(api, signup_settings, "ten_b")).json()["id"]
        async with database.session() as session:
            internal = await enqueue(session, "canary.ping", {}, tenant_id="ten_a")
        headers = auth(admin_token(signup_settings, "ten_a"))
        for job_id in (theirs, internal, "job_missing"):
            assert_problem(
                await api.get(f"/v1/tenants/ten_a/jobs/{job_id}", headers=headers), 404, "NOT_FOUND"
            )
        assert (await api.get("/v1/tenants/ten_a/jobs", headers=headers)).json()["data"] == []

    async def test_idempotency_key_replays(
        self, api: httpx.AsyncClient, signup_settings: Settings, database: Database
    ) -> None:
        headers = {**auth(admin_token(signup_settings, "ten_a")), "Idempotency-Key": "k1"}
        body = {"kind": "canary.ping", "payload": {"n": 1}}
        first = await api.post("/v1/tenants/ten_a/jobs", json=body, headers=headers)
        again = await api.post("/v1/tenants/ten_a/jobs", json=body, headers=headers)
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        other = await api.post(
            "/v1/tenants/ten_a/jobs", json={**body, "payload": {"n": 2}}, headers=headers
        )
        assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
        async with database.session() as session:
            assert (await session.execute(select(func.count()).select_from(Job))).scalar_one() == 1


@pytest.fixture
async def capped(
    client_for: AppFactory, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = make_settings(
        tmp_path / "data",
        database_url=database_url,
        enqueue_max_inflight_total=80,
        enqueue_max_inflight_per_tenant=20,
        enqueue_max_inflight_per_kind={"canary.ping": 70},
    )
    async with client_for(settings) as client:
        yield client, settings


class TestAdmission:
    async def test_200_concurrent_enqueues_admit_exactly_the_cap(
        self, capped: tuple[httpx.AsyncClient, Settings], database: Database
    ) -> None:
        api, settings = capped
        tenants = [f"ten_{n}" for n in range(10)]
        responses = await asyncio.gather(
            *(submit(api, settings, tenant) for tenant in tenants for _ in range(20))
        )
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {202: 70, 429: 130}, statuses  # the kind's cap is the tightest
        for refused in (r for r in responses if r.status_code == 429):
            assert_problem(refused, 429, "RATE_LIMITED")
            assert 1 <= int(refused.headers["retry-after"]) <= 300
        async with database.session() as session:
            rows = await session.execute(
                select(Job.tenant_id, func.count()).group_by(Job.tenant_id)
            )
            per_tenant = dict(rows.all())
        assert sum(per_tenant.values()) == 70 and max(per_tenant.values()) <= 20

    async def test_per_tenant_cap_and_retry_after_follows_completions(
        self, capped: tuple[httpx.AsyncClient, Settings], database: Database
    ) -> None:
        api, settings = capped
        for _ in range(20):
            assert (await submit(api, settings, "ten_noisy")).status_code == 202
        refused = await submit(api, settings, "ten_noisy")
        assert_problem(refused, 429, "RATE_LIMITED")
        assert refused.json()["cap"] == "tenant"
        assert refused.headers["retry-after"] == "60"  # nothing finished in the window
        assert (await submit(api, settings, "ten_quiet")).status_code == 202

        # Twenty of this tenant's jobs finished in the last minute: a slot frees every 3 s.
        async with database.session() as session:
            await session.execute(
                update(Job)
                .where(Job.tenant_id == "ten_noisy")
                .values(status=JobStatus.COMPLETED.value, finished_at=utcnow())
            )
        for _ in range(20):
            assert (await submit(api, settings, "ten_noisy")).status_code == 202
        refused = await submit(api, settings, "ten_noisy")
        assert refused.headers["retry-after"] == "3"  # 1 slot / (20 per 60 s), rounded up
