"""The in-flight deadline counts from a run's last progress, so a slow run that keeps moving
is never expired, and a run expired while its tenant exists can be retried."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import SignupSession, SignupStatus
from tenantry.provisioning import steps
from tenantry.provisioning.service import request_run
from tenantry.signup import service as signups
from tests.fixtures.factories import create_signup, create_tenant, signup_now
from tests.fixtures.workers import running_worker, wait_for

STEP_TAKES = timedelta(minutes=40)  # each slow step: two of them outlast the one-hour deadline


@pytest.fixture
def slow_steps(database: Database, settings: Settings) -> Iterator[list[int]]:
    """Two steps that each take 40 minutes (a moved clock), with a purge running midway."""
    expired: list[int] = []

    async def slow(_: steps.StepContext) -> dict[str, Any]:
        clock.advance(STEP_TAKES)
        async with database.session() as session:
            expired.append((await signups.expire_and_purge(session, settings)).expired)
        return {}

    for name in ("tests.slow_a", "tests.slow_b"):
        steps.step(name, outside=True)(slow)
    yield expired
    for name in ("tests.slow_a", "tests.slow_b"):
        steps._steps.pop(name)


async def test_a_run_busy_past_the_deadline_ends_provisioned(
    database: Database, job_settings: Settings, slow_steps: list[int]
) -> None:
    plan = ["create_tenant", "tests.slow_a", "tests.slow_b", "create_owner"]
    # A lease longer than the moved clock: the slow steps' jobs are not taken back meanwhile.
    update = {"plans": {"starter": plan}, "job_lease": timedelta(hours=3)}
    settings = job_settings.model_copy(update=update)
    signup = await create_signup(database, status=SignupStatus.EMAIL_VERIFIED)
    async with database.session() as session:
        await request_run(session, signup)

    async def settled() -> bool:
        return (await signup_now(database, signup.id)).status in ("PROVISIONED", "EXPIRED")

    async with running_worker(database, settings):
        await wait_for(settled)
    assert slow_steps == [0, 0]  # both purges ran, 40 and 80 minutes into the run
    assert (await signup_now(database, signup.id)).status == SignupStatus.PROVISIONED


async def test_a_run_expired_in_flight_with_its_tenant_can_be_retried(
    database: Database, job_settings: Settings
) -> None:
    tenant = await create_tenant(database)
    signup = await create_signup(
        database, status=SignupStatus.PROVISIONING, tenant=tenant, age=timedelta(hours=2)
    )
    async with database.session() as session:
        assert (await signups.expire_and_purge(session, job_settings)).expired == 1
    async with database.session() as session:
        await signups.retry_provisioning(session, signup.id, by="operator")

    async def provisioned() -> bool:
        return (await signup_now(database, signup.id)).status == SignupStatus.PROVISIONED

    async with running_worker(database, job_settings):
        await wait_for(provisioned)
    assert (await signup_now(database, signup.id)).tenant_id == tenant.id


async def test_an_unverified_expired_session_cannot_be_retried(database: Database) -> None:
    signup = await create_signup(database, status=SignupStatus.PENDING_EMAIL_VERIFICATION)
    async with database.session() as session:
        row = await session.get(SignupSession, signup.id)
        assert row is not None
        row.expires_at = row.created_at
    async with database.session() as session:
        await signups.expire_and_purge(session, Settings(_env_file=None))  # type: ignore[call-arg]
    with pytest.raises(signups.transitions.IllegalTransition):
        async with database.session() as session:
            await signups.retry_provisioning(session, signup.id, by="operator")
