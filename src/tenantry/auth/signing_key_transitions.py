"""The signing-key state machine: published → active (it signs) → published (another signs)
→ retired (verifies until its last token expires). Callers hold the key's row lock; each
move is still conditional on the status it was read in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.machine import Machine
from tenantry.models import KeyStatus, SigningKey

K = KeyStatus
ALLOWED: dict[KeyStatus, frozenset[KeyStatus]] = {
    K.PUBLISHED: frozenset({K.ACTIVE, K.RETIRED}),
    K.ACTIVE: frozenset({K.PUBLISHED}),
    K.RETIRED: frozenset(),
}


class KeyStateConflict(TenantryError):
    status, code, title = 409, "KEY_STATE", "The signing key is not in a state that allows this"


MACHINE = Machine(SigningKey, ALLOWED, KeyStateConflict)


async def _move(session: AsyncSession, key: SigningKey, to: KeyStatus, **changes: Any) -> None:
    read_in = key.status
    if not await MACHINE.move(session, key, to, **changes):
        raise KeyStateConflict(f"{key.kid} moved from {read_in} to {key.status} meanwhile")


async def activate(session: AsyncSession, key: SigningKey) -> None:
    """`key` signs from now on; the key that signed until now stays published."""
    now = utcnow()
    await session.execute(
        update(SigningKey)
        .where(SigningKey.status == K.ACTIVE.value)
        .values(status=K.PUBLISHED.value, deactivated_at=now)
        .execution_options(synchronize_session=False)
    )
    await _move(session, key, K.ACTIVE, activated_at=now, deactivated_at=None)


async def retire(session: AsyncSession, key: SigningKey, verify_until: datetime) -> None:
    await _move(session, key, K.RETIRED, verify_until=verify_until)
