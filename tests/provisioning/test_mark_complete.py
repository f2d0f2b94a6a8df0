"""`tenantry provisioning mark-complete`: a stopped run whose tenant and owner exist becomes
PROVISIONED, with the operator and the reason in its event; anything else is refused."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import Event, SignupStatus
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_member, create_signup, create_tenant, signup_now


async def test_a_run_with_its_tenant_and_owner_is_marked_complete(
    database: Database, settings: Settings
) -> None:
    tenant = await create_tenant(database)
    signup = await create_signup(
        database, status=SignupStatus.EXPIRED, tenant=tenant, age=timedelta(hours=2)
    )
    command = ("provisioning", "mark-complete", signup.id, "--reason", "steps done by hand")
    code, output = await run_tenantry(settings, *command)
    assert code == 1 and "has no owner" in output
    assert (await signup_now(database, signup.id)).status == SignupStatus.EXPIRED
    await create_member(database, tenant.id, "owner", email=signup.email)
    code, output = await run_tenantry(settings, *command)
    assert code == 0, output
    assert (await signup_now(database, signup.id)).status == SignupStatus.PROVISIONED
    async with database.session() as session:
        event = (
            await session.execute(select(Event).where(Event.subject_id == signup.id))
        ).scalar_one()
    assert event.type == "activation.TenantProvisioned"
    assert event.data["reason"] == "steps done by hand"
    assert event.data["marked_complete_by"].startswith("cli")
    code, output = await run_tenantry(settings, *command)
    assert code == 1 and "only a stopped run" in output


async def test_a_run_without_a_tenant_is_refused(database: Database, settings: Settings) -> None:
    signup = await create_signup(database, status=SignupStatus.FAILED)
    code, output = await run_tenantry(
        settings, "provisioning", "mark-complete", signup.id, "--reason", "x"
    )
    assert code == 1 and "retry it instead" in output
