"""The outbox message state machine: PENDING → SENT | FAILED, each a conditional update, so
a message two workers both sent (a lease that ran out) is recorded once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import MailMessage, MailStatus

M = MailStatus
ALLOWED: dict[MailStatus, frozenset[MailStatus]] = {
    M.PENDING: frozenset({M.SENT, M.FAILED}),
    M.SENT: frozenset(),
    M.FAILED: frozenset(),
}


class MailState(TenantryError):
    status, code, title = 409, "MAIL_STATE", "The message is not in a state for this"


MACHINE = Machine(MailMessage, ALLOWED, MailState)


async def sent(session: AsyncSession, message: MailMessage, attempt: int) -> bool:
    """Delivered: the sealed secrets are dropped. False when another attempt recorded it."""
    return await MACHINE.move(
        session,
        message,
        M.SENT,
        sent_at=utcnow(),
        sealed_secrets=None,
        attempts=attempt,
        last_error=None,
    )


async def failed(session: AsyncSession, message: MailMessage, attempt: int, error: str) -> bool:
    """Given up for good: the sealed secrets are dropped."""
    return await MACHINE.move(
        session, message, M.FAILED, sealed_secrets=None, attempts=attempt, last_error=error
    )
