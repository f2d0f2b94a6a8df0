"""Row-level security holds inside the handlers of jobs a tenant submitted: a host
application's job code sees its tenant's rows only; the platform's own tasks see all."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import Tenant
from tenantry.worker.queue import enqueue
from tenantry.worker.registry import JobContext, registry
from tests.fixtures.factories import create_tenant
from tests.fixtures.workers import job_of, running_worker, wait_for

pytestmark = pytest.mark.parametrize("backend", ["postgres"])


async def count_tenants(context: JobContext) -> dict[str, Any]:
    async with context.session() as session:
        return {"tenants": (await session.execute(select(func.count(Tenant.id)))).scalar_one()}


registry.task("tests.count_tenants", tenant_submittable=True)(count_tenants)
registry.task("tests.count_tenants_platform")(count_tenants)


@pytest.mark.parametrize(
    ("kind", "visible"), [("tests.count_tenants", 1), ("tests.count_tenants_platform", 2)]
)
async def test_a_tenant_job_sees_its_tenant_only(
    kind: str, visible: int, database: Database, database_url: str, job_settings: Settings
) -> None:
    mine = await create_tenant(database)
    await create_tenant(database)
    async with database.session() as session:
        job_id = await enqueue(session, kind, {}, tenant_id=mine.id)
    app_role = Database(database_url)  # the worker runs as the least-privilege role
    try:

        async def finished() -> bool:
            return (await job_of(database, job_id)).status == "COMPLETED"

        async with running_worker(app_role, job_settings):
            await wait_for(finished)
    finally:
        await app_role.dispose()
    assert (await job_of(database, job_id)).result == {"tenants": visible}
