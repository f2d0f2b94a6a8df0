"""The auth revision: one counter that every change to signing keys or revocations increments
in its own transaction, so each process polls one row and reloads only when it moved."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.models import AuthRevision


async def bump_revision(session: AsyncSession) -> None:
    await session.execute(
        update(AuthRevision).where(AuthRevision.id == 1).values(revision=AuthRevision.revision + 1)
    )


async def read_revision(session: AsyncSession) -> int:
    query = select(AuthRevision.revision).where(AuthRevision.id == 1)
    return int((await session.execute(query)).scalar_one())
