"""The signup state machine: every status change goes through `move`, which writes its event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.models import SignupSession, SignupStatus

S = SignupStatus
ALLOWED: dict[SignupStatus, frozenset[SignupStatus]] = {
    S.PENDING_EMAIL_VERIFICATION: frozenset({S.EMAIL_VERIFIED, S.EXPIRED}),
    S.EMAIL_VERIFIED: frozenset({S.PROVISIONING, S.REVIEW_REQUIRED, S.FAILED, S.EXPIRED}),
    S.PROVISIONING: frozenset({S.PROVISIONED, S.REVIEW_REQUIRED, S.FAILED, S.EXPIRED}),
    S.REVIEW_REQUIRED: frozenset({S.PROVISIONING, S.FAILED, S.EXPIRED}),
    S.FAILED: frozenset({S.PROVISIONING}),
    S.PROVISIONED: frozenset(),
    S.EXPIRED: frozenset(),
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


async def move_if(
    session: AsyncSession,
    signup: SignupSession,
    to: SignupStatus,
    *conditions: ColumnElement[bool],
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> bool:
    """`move`, decided by one conditional UPDATE: under concurrency exactly one caller wins.

    The row must still be in the status `signup` was read in and meet `conditions`.
    """
    current = SignupStatus(signup.status)
    if to not in ALLOWED[current]:
        raise IllegalTransition(f"signup {signup.id} is {current}, it cannot become {to}")
    now = utcnow()
    won = await session.execute(
        update(SignupSession)
        .where(SignupSession.id == signup.id, SignupSession.status == current, *conditions)
        .values(status=to, updated_at=now, **changes)
        .returning(SignupSession.id)
        .execution_options(synchronize_session=False)
    )
    if won.scalar_one_or_none() is None:
        return False
    await session.refresh(signup)
    _record(session, signup, current, to, data)
    return True


def move(
    session: AsyncSession,
    signup: SignupSession,
    to: SignupStatus,
    *,
    data: dict[str, Any] | None = None,
    **changes: Any,
) -> None:
    """Change `signup` to status `to`, with its other column changes, and append the event."""
    current = SignupStatus(signup.status)
    if to not in ALLOWED[current]:
        raise IllegalTransition(f"signup {signup.id} is {current}, it cannot become {to}")
    signup.status = to
    signup.updated_at = utcnow()
    for column, value in changes.items():
        setattr(signup, column, value)
    _record(session, signup, current, to, data)


def _record(
    session: AsyncSession,
    signup: SignupSession,
    current: SignupStatus,
    to: SignupStatus,
    data: dict[str, Any] | None,
) -> None:
    events.record(
        session,
        EVENT_TYPES[to],
        tenant_id=signup.tenant_id,
        subject_id=signup.id,
        data={"from": current.value, "to": to.value, "slug": signup.slug, **(data or {})},
    )
