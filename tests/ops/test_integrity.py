"""Integrity: each kind provoked on a real database, found by the API and the CLI, fixed
where the fix is safe, and the database clean once the rest is put right by hand."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import timedelta

import httpx
from sqlalchemy import delete, select, text, update

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.metrics import INTEGRITY_FINDINGS
from tenantry.models import (
    Event,
    Invitation,
    InvitationStatus,
    Job,
    JobStatus,
    MailMessage,
    MailStatus,
    Membership,
    SignupSession,
    SignupStatus,
)
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_invitation, create_member, create_signup, create_tenant
from tests.ops.test_funnel import operator
from tests.ops.test_slo import job, pending_mail

KINDS = {
    "tenant_without_owner": False,
    "membership_without_user": False,
    "accepted_without_activation": True,
    "provisioned_session_without_tenant": False,
    "lease_expired": True,
    "invitation_past_retention": True,
    "mail_stuck": False,
}


async def orphan_membership(database: Database, settings: Settings, tenant_id: str) -> None:
    """A membership whose user is gone: only with the foreign key switched off, as a restore
    without constraints or a hand edit would leave it."""
    now = utcnow()
    if not database.is_postgres:  # a plain sqlite3 connection does not enforce foreign keys
        path = settings.resolved_database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as connection, connection:
            connection.execute(
                "INSERT INTO memberships VALUES (?, 'usr_gone', 'member', ?)",
                (tenant_id, now.replace(tzinfo=None).isoformat(" ")),
            )
        return
    async with database.session() as session:
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        session.add(
            Membership(tenant_id=tenant_id, user_id="usr_gone", role="member", created_at=now)
        )


async def provoke_every_kind(database: Database, settings: Settings) -> None:
    await create_tenant(database, slug="ownerless")
    tenant = await create_tenant(database, slug="host")
    owner = await create_member(database, tenant.id, "owner")
    await orphan_membership(database, settings, tenant.id)
    accepted = await create_invitation(database, settings, tenant, invited_by=owner)
    retained = await create_invitation(database, settings, tenant, invited_by=owner)
    now = utcnow()
    async with database.session() as session:
        await session.execute(
            update(Invitation)
            .where(Invitation.id == accepted.invitation.id)
            .values(status=InvitationStatus.ACCEPTED.value, ended_at=now, accepted_by=owner.id)
        )
        await session.execute(
            update(Invitation)
            .where(Invitation.id == retained.invitation.id)
            .values(status=InvitationStatus.REVOKED.value, expires_at=now - timedelta(days=8))
        )
    await create_signup(database, status=SignupStatus.PROVISIONED)
    await job(database, JobStatus.PROCESSING, finished_ago=None)
    async with database.session() as session:
        await session.execute(
            update(Job).values(
                attempts=1, max_attempts=3, lease_expires_at=now - timedelta(minutes=1)
            )
        )
    await pending_mail(database, 1)
    async with database.session() as session:
        await session.execute(update(MailMessage).values(created_at=now - timedelta(hours=2)))


async def found(client: httpx.AsyncClient, settings: Settings) -> dict[str, bool]:
    response = await client.get("/v1/admin/integrity", headers=operator(settings))
    assert response.status_code == 200, response.text
    return {f["kind"]: f["fixable"] for f in response.json()["findings"]}


async def put_right_by_hand(database: Database) -> None:
    async with database.session() as session:
        ownerless = "SELECT id FROM tenants WHERE slug = 'ownerless'"
        tenant_id = (await session.execute(text(ownerless))).scalar_one()
        await session.execute(delete(Membership).where(Membership.user_id == "usr_gone"))
        await session.execute(delete(SignupSession))
        await session.execute(update(MailMessage).values(status=MailStatus.SENT.value))
    await create_member(database, tenant_id, "owner")


async def test_every_kind_found_fixed_where_safe_then_clean(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    assert await found(client, settings) == {}
    code, output = await run_tenantry(settings, "integrity", "check")
    assert code == 0, output

    await provoke_every_kind(database, settings)
    assert await found(client, settings) == KINDS
    assert INTEGRITY_FINDINGS.labels("mail_stuck")._value.get() == 1

    code, output = await run_tenantry(settings, "integrity", "check", "--fix", "--json")
    assert code == 1, output  # the unfixable ones remain
    report = json.loads(output)
    assert sorted(line.split(":")[0] for line in report["fixed"]) == sorted(
        kind for kind, fixable in KINDS.items() if fixable
    )
    assert await found(client, settings) == {k: f for k, f in KINDS.items() if not f}
    async with database.session() as session:
        backfilled = select(Event.data).where(Event.type == "activation.ActivationCompleted")
        assert [data["backfilled"] for data in (await session.execute(backfilled)).scalars()] == [
            True
        ]
        assert (await session.execute(select(Job.status))).scalar_one() == JobStatus.PENDING
        assert len((await session.execute(select(Invitation))).all()) == 1

    await put_right_by_hand(database)
    assert await found(client, settings) == {}
    code, output = await run_tenantry(settings, "integrity", "check")
    assert code == 0, output
