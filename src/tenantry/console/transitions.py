"""A console sign-in's state machine: pending → active → ended (or pending → ended)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.machine import Machine
from tenantry.models import ConsoleSession, ConsoleSessionStatus

S = ConsoleSessionStatus
ALLOWED = {
    S.PENDING: frozenset({S.ACTIVE, S.ENDED}),
    S.ACTIVE: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}


class ConsoleSessionState(TenantryError):
    status, code, title = 409, "CONSOLE_SESSION_STATE", "The sign-in is over"


MACHINE = Machine(ConsoleSession, ALLOWED, ConsoleSessionState)


async def activate(session: AsyncSession, flow: ConsoleSession, **changes: Any) -> bool:
    """The right code, once: only one of two concurrent right answers wins."""
    return await MACHINE.move(session, flow, S.ACTIVE, **changes)


async def end(session: AsyncSession, flow: ConsoleSession) -> bool:
    if flow.status == S.ENDED:
        return False
    return await MACHINE.move(session, flow, S.ENDED)
