"""The invitation state machine: pending → accepted | revoked | expired, and a resend that
gives a pending or expired invitation a new link. Every move is a conditional update on the
status it was read in, so an accept and a resend or revoke racing it cannot both win."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import Invitation, InvitationStatus

I = InvitationStatus  # noqa: E741
ALLOWED: dict[InvitationStatus, frozenset[InvitationStatus]] = {
    I.PENDING: frozenset({I.ACCEPTED, I.REVOKED, I.EXPIRED, I.PENDING}),
    I.EXPIRED: frozenset({I.PENDING}),
    I.ACCEPTED: frozenset(),
    I.REVOKED: frozenset(),
}


class InvitationState(TenantryError):
    status, code, title = 409, "INVITATION_STATE", "The invitation is not in a state for this"


MACHINE = Machine(Invitation, ALLOWED, InvitationState)


async def try_move(
    session: AsyncSession,
    invitation: Invitation,
    to: InvitationStatus,
    *conditions: ColumnElement[bool],
    **changes: Any,
) -> bool:
    """Move `invitation` from the status it was read in; False (row refreshed) if it lost."""
    return await MACHINE.move(session, invitation, to, *conditions, **changes)


async def expire_lapsed(session: AsyncSession, *conditions: ColumnElement[bool]) -> int:
    """Pending invitations past their expiry become expired, in one statement."""
    result = await session.execute(
        update(Invitation)
        .where(Invitation.status == I.PENDING.value, Invitation.expires_at <= utcnow(), *conditions)
        .values(status=I.EXPIRED.value, ended_at=Invitation.expires_at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
