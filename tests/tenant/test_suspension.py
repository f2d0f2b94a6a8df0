"""Suspending a tenant: its tokens and keys are refused with `tenant_suspended`, its jobs wait
in line, and reactivation lifts all of it; a second suspension is a clear 409."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import Event
from tenantry.worker.queue import enqueue
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_tenant, member_token, operator_headers
from tests.fixtures.secrets import seen
from tests.fixtures.workers import job_of, running_worker, wait_for
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem


async def test_a_suspended_tenant_is_refused_and_its_jobs_wait(
    client: httpx.AsyncClient, database: Database, settings: Settings, job_settings: Settings
) -> None:
    tenant, other = await create_tenant(database), await create_tenant(database)
    _, owner = await member_token(database, settings, tenant.id, "owner")
    created = await client.post(
        f"/v1/tenants/{tenant.id}/keys",
        json={"name": "ci", "scopes": ["jobs:read"]},
        headers=auth(owner),
    )
    secret = seen(created.json()["secret"])
    admin = operator_headers(settings, subject="ops_alice")
    suspended = await client.post(
        f"/v1/admin/tenants/{tenant.id}/suspend", json={"reason": "unpaid"}, headers=admin
    )
    assert suspended.json()["status"] == "suspended"
    refused = await client.get(f"/v1/tenants/{tenant.id}", headers=auth(owner))
    assert assert_problem(refused, 403, "FORBIDDEN")["reason"] == "tenant_suspended"
    exchange = await client.post(
        "/v1/auth/token", data={"grant_type": "client_credentials", "client_secret": secret}
    )
    assert assert_problem(exchange, 403, "FORBIDDEN")["reason"] == "tenant_suspended"
    again = await client.post(
        f"/v1/admin/tenants/{tenant.id}/suspend", json={"reason": "twice"}, headers=admin
    )
    assert_problem(again, 409, "TENANT_STATE")

    async with database.session() as session:
        waiting = await enqueue(session, "canary.ping", {}, tenant_id=tenant.id)
        served = await enqueue(session, "canary.ping", {}, tenant_id=other.id)

    async def other_done() -> bool:
        return (await job_of(database, served)).status == "COMPLETED"

    async with running_worker(database, job_settings):
        await wait_for(other_done)
        assert (await job_of(database, waiting)).status == "PENDING"
        reactivated = await client.post(
            f"/v1/admin/tenants/{tenant.id}/reactivate", json={"reason": "paid"}, headers=admin
        )
        assert reactivated.json()["status"] == "active"

        async def waiting_done() -> bool:
            return (await job_of(database, waiting)).status == "COMPLETED"

        await wait_for(waiting_done)
    assert (await client.get(f"/v1/tenants/{tenant.id}", headers=auth(owner))).status_code == 200
    async with database.session() as session:
        types = (
            await session.execute(
                select(Event.type).where(Event.subject_id == tenant.id).order_by(Event.occurred_at)
            )
        ).scalars()
        assert list(types) == ["tenant.Suspended", "tenant.Reactivated"]


async def test_the_cli_suspends_and_reactivates(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    tenant = await create_tenant(database)
    _, member = await member_token(database, settings, tenant.id, "member")
    read = f"/v1/tenants/{tenant.id}"
    code, output = await run_tenantry(
        settings, "tenants", "suspend", tenant.id, "--reason", "abuse"
    )
    assert code == 0 and "suspended" in output

    async def refused() -> bool:
        return (await client.get(read, headers=auth(member))).status_code == 403

    await wait_for(refused)  # the app learns of it within its auth refresh interval
    code, output = await run_tenantry(settings, "tenants", "suspend", tenant.id, "--reason", "x")
    assert code == 1 and "cannot become suspended" in output
    code, _ = await run_tenantry(settings, "tenants", "reactivate", tenant.id, "--reason", "ok")
    assert code == 0

    async def served() -> bool:
        return (await client.get(read, headers=auth(member))).status_code == 200

    await wait_for(served)
