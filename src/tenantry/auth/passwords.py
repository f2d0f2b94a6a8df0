"""Optional passwords (Argon2id). A hash costs ~100 ms of CPU, so hashing runs in threads,
at most two at a time: a flood of password attempts cannot starve the event loop."""

from __future__ import annotations

import asyncio
import weakref
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import sessions
from tenantry.auth.jwt import TokenIssuer
from tenantry.auth.login import tenant_for
from tenantry.config import Settings
from tenantry.errors import Unauthenticated
from tenantry.kit.repository import get_or_404
from tenantry.models import User

HASHING_SLOTS = 2
_hasher = PasswordHasher()
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slots() -> asyncio.Semaphore:
    """The hashing slots of the running loop (an asyncio primitive belongs to one loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _semaphores:
        _semaphores[loop] = asyncio.Semaphore(HASHING_SLOTS)
    return _semaphores[loop]


@cache
def _dummy_hash() -> str:
    """Verified against when the account has no password, so both answers take as long."""
    return _hasher.hash("tenantry-timing-equaliser")


async def hash_password(password: str) -> str:
    async with _slots():
        return await asyncio.to_thread(_hasher.hash, password)


async def _verify(digest: str, password: str) -> bool:
    async with _slots():
        try:
            return await asyncio.to_thread(_hasher.verify, digest, password)
        except (VerificationError, InvalidHashError):
            return False


async def set_password(session: AsyncSession, user_id: str, password: str) -> None:
    user = await get_or_404(session, User, user_id)
    user.password_hash = await hash_password(password)


async def login(
    session: AsyncSession,
    settings: Settings,
    issuer: TokenIssuer,
    *,
    email: str,
    password: str,
    tenant_id: str | None,
) -> sessions.TokenPair:
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    stored = user.password_hash if user is not None else None
    digest = stored if stored else await asyncio.to_thread(_dummy_hash)
    if not await _verify(digest, password) or user is None or stored is None:
        raise Unauthenticated("The email or the password is not right")
    chosen = await tenant_for(session, user.id, tenant_id)
    return await sessions.issue(session, settings, issuer, user_id=user.id, tenant_id=chosen)
