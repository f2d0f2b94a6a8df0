"""State changes that race: a transition committed between another's read and its write makes
that write lose cleanly, and concurrent operators leave every row in a state its events explain.

The interleaved tests run on PostgreSQL, where a transaction that has only read holds no lock:
the competing transition commits in between, as it would in production. SQLite admits one
writer at a time, so there the same interleaving cannot happen (the stress tests run on both).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tenantry.app import build_token_issuer
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import TenantryError
from tenantry.invitation import service as invitations
from tenantry.invitation import transitions as invitation_transitions
from tenantry.job import service as jobs
from tenantry.kit.clock import utcnow
from tenantry.models import (
    Event,
    Invitation,
    InvitationStatus,
    Job,
    JobStatus,
    SignupSession,
    SignupStatus,
)
from tenantry.signup import service as signups
from tenantry.signup import transitions as signup_transitions
from tenantry.worker import transitions as job_transitions
from tenantry.worker.queue import enqueue
from tests.fixtures.factories import (
    create_invitation,
    create_member,
    create_signup,
    create_tenant,
    signup_now,
)

STALE = timedelta(hours=2)  # past the one-hour in-flight deadline


def interleave(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    name: str,
    competitor: Callable[[], Awaitable[Any]],
) -> None:
    """Run `competitor` (to its commit) just before the first call of `module.name`: between
    the caller's read and its guarded write."""
    original = getattr(module, name)
    fired = False

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal fired
        if not fired:
            fired = True
            await competitor()
        return await original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


async def events_of(database: Database, subject_id: str) -> list[Event]:
    async with database.session() as session:
        rows = await session.execute(
            select(Event).where(Event.subject_id == subject_id).order_by(Event.occurred_at)
        )
        return list(rows.scalars())


async def resend_or_revoke(
    database: Database, settings: Settings, invitation_id: str, action: str
) -> None:
    async with database.session() as session:
        invitation = await session.get(Invitation, invitation_id)
        assert invitation is not None
        if action == "resend":
            await invitations.resend(session, settings, invitation)
        else:
            await invitations.revoke(session, invitation)


async def provision(database: Database, signup_id: str) -> None:
    """The run's last step commits: PROVISIONING → PROVISIONED, under the row's lock."""
    async with database.session() as session:
        query = select(SignupSession).where(SignupSession.id == signup_id).with_for_update()
        signup = (await session.execute(query)).scalar_one()
        await signup_transitions.move(session, signup, SignupStatus.PROVISIONED)


@pytest.mark.parametrize("backend", ["postgres"])
class TestInterleaved:
    async def test_purge_loses_to_a_run_that_finishes(
        self, database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tenant = await create_tenant(database)
        signup = await create_signup(
            database, status=SignupStatus.PROVISIONING, tenant=tenant, age=STALE
        )
        interleave(
            monkeypatch, signup_transitions, "try_move", lambda: provision(database, signup.id)
        )
        async with database.session() as session:
            report = await signups.expire_and_purge(session, settings)
        assert report.expired == 0
        assert (await signup_now(database, signup.id)).status == SignupStatus.PROVISIONED
        moves = [(e.data["from"], e.data["to"]) for e in await events_of(database, signup.id)]
        assert moves == [("PROVISIONING", "PROVISIONED")]

    async def test_retry_loses_to_another_retry(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        signup = await create_signup(database, status=SignupStatus.FAILED)

        async def other_retry() -> None:
            async with database.session() as session:
                await signups.retry_provisioning(session, signup.id, by="operator a")

        interleave(monkeypatch, signup_transitions, "try_move", other_retry)
        with pytest.raises(signup_transitions.IllegalTransition):
            async with database.session() as session:
                await signups.retry_provisioning(session, signup.id, by="operator b")
        async with database.session() as session:
            runs = await session.execute(select(Job).where(Job.kind == "provisioning.start"))
            assert len(runs.all()) == 1

    @pytest.mark.parametrize("action", ["resend", "revoke"])
    async def test_resend_and_revoke_lose_to_an_accept(
        self,
        action: str,
        database: Database,
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        tenant = await create_tenant(database)
        owner = await create_member(database, tenant.id, "owner")
        created = await create_invitation(database, settings, tenant, invited_by=owner)

        async def accept() -> None:
            async with database.session() as session:
                await invitations.accept(
                    session,
                    settings,
                    build_token_issuer(settings),
                    created.token,
                    name="Bo",
                    password=None,
                )

        interleave(monkeypatch, invitation_transitions, "try_move", accept)
        with pytest.raises(invitation_transitions.InvitationState):
            await resend_or_revoke(database, settings, created.invitation.id, action)
        async with database.session() as session:
            invitation = await session.get(Invitation, created.invitation.id)
        assert invitation is not None and invitation.status == InvitationStatus.ACCEPTED

    async def test_job_retry_loses_to_another_retry(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with database.session() as session:
            job_id = await enqueue(session, "canary.ping", {})
            await session.execute(
                update(Job).where(Job.id == job_id).values(status=JobStatus.FAILED.value)
            )

        async def other_retry() -> None:
            async with database.session() as session:
                await jobs.retry_job(session, job_id)

        interleave(monkeypatch, job_transitions.MACHINE, "move", other_retry)
        with pytest.raises(job_transitions.JobStateConflict):
            async with database.session() as session:
                await jobs.retry_job(session, job_id)


def explained_by_events(status: str, moves: list[tuple[str, str]], first: str) -> bool:
    """The moves chain from `first` to `status`, each one allowed by the machine."""
    current = first
    for source, target in moves:
        if source != current or target not in signup_transitions.ALLOWED[SignupStatus(source)]:
            return False
        current = target
    return current == status


class TestConcurrentOperators:
    async def test_purges_and_retries_against_finishing_runs(
        self, database: Database, settings: Settings
    ) -> None:
        tenants = [await create_tenant(database) for _ in range(10)]
        runs = [
            await create_signup(database, status=SignupStatus.PROVISIONING, tenant=t, age=STALE)
            for t in tenants
        ]

        async def purge() -> None:
            async with database.session() as session:
                await signups.expire_and_purge(session, settings)

        async def retry(signup_id: str) -> None:
            async with database.session() as session:
                await signups.retry_provisioning(session, signup_id, by="operator")

        async def finish(signup_id: str) -> None:
            async with database.session() as session:
                query = select(SignupSession).where(SignupSession.id == signup_id)
                signup = (await session.execute(query.with_for_update())).scalar_one()
                if signup.status == SignupStatus.PROVISIONING:
                    await signup_transitions.move(session, signup, SignupStatus.PROVISIONED)

        work = [purge() for _ in range(20)]
        work += [retry(random.choice(runs).id) for _ in range(20)]
        work += [finish(run.id) for run in runs]
        random.shuffle(work)
        outcomes = await asyncio.gather(*work, return_exceptions=True)
        unexpected = [o for o in outcomes if isinstance(o, Exception)]
        assert all(isinstance(o, signup_transitions.IllegalTransition) for o in unexpected)
        for run in runs:
            status = (await signup_now(database, run.id)).status
            moves = [(e.data["from"], e.data["to"]) for e in await events_of(database, run.id)]
            assert explained_by_events(status, moves, first="PROVISIONING"), (status, moves)

    async def test_resends_revokes_and_accepts_of_the_same_invitations(
        self, database: Database, settings: Settings
    ) -> None:
        tenant = await create_tenant(database)
        owner = await create_member(database, tenant.id, "owner")
        invited = [
            await create_invitation(database, settings, tenant, invited_by=owner) for _ in range(5)
        ]
        issuer = build_token_issuer(settings)

        async def act(action: str, index: int) -> None:
            created = invited[index]
            if action != "accept":
                await resend_or_revoke(database, settings, created.invitation.id, action)
                return
            async with database.session() as session:
                await invitations.accept(
                    session, settings, issuer, created.token, name="Bo", password=None
                )

        work = [act(a, i) for a in ("resend", "revoke", "accept") for i in range(5) for _ in (1, 2)]
        random.shuffle(work)
        outcomes = await asyncio.gather(*work, return_exceptions=True)
        assert all(isinstance(o, TenantryError) for o in outcomes if o is not None), outcomes
        replay = {
            "activation.InvitationResent": "pending",
            "activation.InvitationRevoked": "revoked",
            "activation.InvitationAccepted": "accepted",
        }
        for created in invited:
            async with database.session() as session:
                invitation = await session.get(Invitation, created.invitation.id)
            assert invitation is not None
            state = "pending"
            for event in await events_of(database, invitation.id):
                assert state == "pending", f"{event.type} after {state}"
                state = replay.get(event.type, state)
            assert state == invitation.status
            assert invitation.status != "accepted" or invitation.accepted_by is not None
            assert invitation.ended_at is None or invitation.ended_at <= utcnow()
