"""The signup state machine: every status change is a conditional update through `MACHINE`,
and writes its event in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import SignupSession, SignupStatus

S = SignupStatus
ALLOWED: dict[SignupStatus, frozenset[SignupStatus]] = {
    S.PENDING_EMAIL_VERIFICATION: frozenset({S.EMAIL_VERIFIED, S.EXPIRED}),
    S.EMAIL_VERIFIED: frozenset({S.PROVISIONING, S.REVIEW_REQUIRED, S.FAILED, S.EXPIRED}),
    S.PROVISIONING: frozenset({S.PROVISIONED, S.REVIEW_REQUIRED, S.FAILED, S.EXPIRED}),
    # → PROVISIONED from a stopped run: an operator marks it complete (its tenant and owner
    # exist); → PROVISIONING: a retry, also of a run expired in flight.
    S.REVIEW_REQUIRED: frozenset({S.PROVISIONING, S.PROVISIONED, S.FAILED, S.EXPIRED}),
    S.FAILED: frozenset({S.PROVISIONING, S.PROVISIONED}),
    S.PROVISIONED: frozenset(),
    S.EXPIRED: frozenset({S.PROVISIONING, S.PROVISIONED}),
}

EVENT_TYPES = {
    S.EMAIL_VERIFIED: "activation.EmailVerified",
    S.PROVISIONING: "provisioning.Started",
    S.PROVISIONED: "activation.TenantProvisioned",
    S.REVIEW_REQUIRED: "provisioning.ReviewRequired",
    S.FAILED: "provisioning.Failed",
    S.EXPIRED: "activation.SignupExpired",
}


class IllegalTransition(TenantryError):
    status, code, title = (
        409,
        "SESSION_STATE",
        "The signup session is not in a state that allows this",
    )


MACHINE = Machine(SignupSession, ALLOWED, IllegalTransition)


async def try_move(
    session: AsyncSession,
    signup: SignupSession,
    to: SignupStatus,
    *conditions: ColumnElement[bool],
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> bool:
    """Move `signup` from the status it was read in to `to`, with its other column changes, if
    it is still in that status and meets `conditions`; on success append the event.

    Under concurrency exactly one caller wins; the others get False and a refreshed row.
    """
    current = SignupStatus(signup.status)
    now = utcnow()
    if to == S.PROVISIONED:
        changes.setdefault("provisioned_at", now)
    if not await MACHINE.move(session, signup, to, *conditions, updated_at=now, **changes):
        return False
    events.record(
        session,
        EVENT_TYPES[to],
        tenant_id=signup.tenant_id,
        subject_id=signup.id,
        data={"from": current.value, "to": to.value, "slug": signup.slug, **(data or {})},
        synthetic=signup.synthetic,
    )
    return True


async def move(
    session: AsyncSession,
    signup: SignupSession,
    to: SignupStatus,
    *,
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> None:
    """`try_move` for callers that hold the row's lock: losing means someone else moved it."""
    read_in = signup.status
    if not await try_move(session, signup, to, data=data, **changes):
        raise IllegalTransition(f"signup {signup.id} moved from {read_in} to {signup.status}")
