"""Integrity checks: states the service should never be in, found, and fixed where safe.

Each kind is a query for the ids it concerns; a kind with a fix repairs exactly what its
query found and nothing else, in the caller's transaction. The daily run reports and sets
`tenantry_integrity_findings{kind}`; `--fix` is an operator's choice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.event import service as events
from tenantry.invitation.service import past_retention
from tenantry.kit.clock import utcnow
from tenantry.mail.service import not_canary
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
    Tenant,
    User,
)
from tenantry.worker import transitions as job_transitions

MAIL_STUCK_AFTER = timedelta(hours=1)
IDS_SHOWN = 100  # per kind; `count` says how many there are


@dataclass(frozen=True)
class Finding:
    kind: str
    ids: list[str]
    count: int
    fixable: bool


async def _ids(session: AsyncSession, column: Any, *where: ColumnElement[bool]) -> list[str]:
    query = select(column).where(*where).order_by(column)
    return [str(value) for value in (await session.execute(query)).scalars()]


async def _tenants_without_owner(session: AsyncSession, settings: Settings) -> list[str]:
    owner = exists().where(Membership.tenant_id == Tenant.id, Membership.role == "owner")
    return await _ids(session, Tenant.id, ~owner)


async def _memberships_without_user(session: AsyncSession, settings: Settings) -> list[str]:
    user = exists().where(User.id == Membership.user_id)
    return [
        f"{tenant}/{user_id}"
        for tenant, user_id in (
            await session.execute(
                select(Membership.tenant_id, Membership.user_id)
                .where(~user)
                .order_by(Membership.tenant_id, Membership.user_id)
            )
        ).all()
    ]


def _activation_of_invitation() -> ColumnElement[bool]:
    return exists().where(
        Event.type == "activation.ActivationCompleted",
        Event.data["invitation_id"].as_string() == Invitation.id,
    )


async def _accepted_without_activation(session: AsyncSession, settings: Settings) -> list[str]:
    accepted = Invitation.status == InvitationStatus.ACCEPTED
    return await _ids(session, Invitation.id, accepted, ~_activation_of_invitation())


async def _write_missing_activations(session: AsyncSession, ids: Sequence[str]) -> None:
    rows = (await session.execute(select(Invitation).where(Invitation.id.in_(ids)))).scalars()
    for invitation in rows:
        events.record(
            session,
            "activation.ActivationCompleted",
            tenant_id=invitation.tenant_id,
            subject_id=invitation.accepted_by,
            data={"invitation_id": invitation.id, "backfilled": True},
        )


async def _provisioned_without_tenant(session: AsyncSession, settings: Settings) -> list[str]:
    tenant = exists().where(Tenant.id == SignupSession.tenant_id)
    provisioned = SignupSession.status == SignupStatus.PROVISIONED
    return await _ids(session, SignupSession.id, provisioned, ~tenant)


async def _leases_expired(session: AsyncSession, settings: Settings) -> list[str]:
    lapsed = (Job.status == JobStatus.PROCESSING) & (Job.lease_expires_at < utcnow())
    return await _ids(session, Job.id, lapsed)


async def _hand_jobs_back(session: AsyncSession, ids: Sequence[str]) -> None:
    await job_transitions.reap(session)  # exactly the jobs still under an expired lease


async def _invitations_past_retention(session: AsyncSession, settings: Settings) -> list[str]:
    return await _ids(session, Invitation.id, past_retention())


async def _delete_invitations(session: AsyncSession, ids: Sequence[str]) -> None:
    await session.execute(delete(Invitation).where(Invitation.id.in_(ids), past_retention()))


async def _mail_stuck(session: AsyncSession, settings: Settings) -> list[str]:
    old = MailMessage.created_at < utcnow() - MAIL_STUCK_AFTER
    pending = MailMessage.status == MailStatus.PENDING
    return await _ids(session, MailMessage.id, pending, old, not_canary(settings))


@dataclass(frozen=True)
class Kind:
    name: str
    find: Callable[[AsyncSession, Settings], Awaitable[list[str]]]
    fix: Callable[[AsyncSession, Sequence[str]], Awaitable[None]] | None = None
    fixed: str = ""  # what the fix did, for the operator


KINDS = (
    Kind("tenant_without_owner", _tenants_without_owner),
    Kind("membership_without_user", _memberships_without_user),
    Kind(
        "accepted_without_activation",
        _accepted_without_activation,
        _write_missing_activations,
        "wrote the missing activation.ActivationCompleted events",
    ),
    Kind("provisioned_session_without_tenant", _provisioned_without_tenant),
    Kind("lease_expired", _leases_expired, _hand_jobs_back, "handed the jobs back to the queue"),
    Kind(
        "invitation_past_retention",
        _invitations_past_retention,
        _delete_invitations,
        "deleted the invitations",
    ),
    Kind("mail_stuck", _mail_stuck),
)


async def check(session: AsyncSession, settings: Settings) -> list[Finding]:
    """Every kind with something found, and the gauge of each kind set."""
    findings = []
    for kind in KINDS:
        ids = await kind.find(session, settings)
        INTEGRITY_FINDINGS.labels(kind.name).set(len(ids))
        if ids:
            findings.append(Finding(kind.name, ids[:IDS_SHOWN], len(ids), kind.fix is not None))
    return findings


async def fix(session: AsyncSession, settings: Settings, findings: Sequence[Finding]) -> list[str]:
    """Repair the fixable findings; one line per kind saying what was done."""
    done = []
    fixes = {kind.name: kind for kind in KINDS}
    for finding in findings:
        kind = fixes[finding.kind]
        if kind.fix is None:
            continue
        ids = await kind.find(session, settings)  # all of them, not only the ones shown
        await kind.fix(session, ids)
        done.append(f"{kind.name}: {kind.fixed} ({len(ids)})")
    return done
