"""Promo codes, managed by operators (`tenantry promos`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.repository import get_or_404
from tenantry.models import PromoCode


class PromoExists(TenantryError):
    status, code, title = 409, "PROMO_EXISTS", "The promo code exists"


async def create_promo(
    session: AsyncSession,
    code: str,
    *,
    description: str | None = None,
    expires_at: datetime | None = None,
    max_redemptions: int | None = None,
) -> PromoCode:
    normalised = code.strip().upper()
    if await session.get(PromoCode, normalised) is not None:
        raise PromoExists(f"promo code {normalised} exists")
    promo = PromoCode(
        code=normalised,
        description=description,
        expires_at=expires_at,
        max_redemptions=max_redemptions,
        redemptions=0,
        disabled=False,
        created_at=utcnow(),
    )
    session.add(promo)
    return promo


async def list_promos(session: AsyncSession) -> Sequence[PromoCode]:
    return (
        (await session.execute(select(PromoCode).order_by(PromoCode.created_at.desc())))
        .scalars()
        .all()
    )


async def disable_promo(session: AsyncSession, code: str) -> PromoCode:
    promo = await get_or_404(session, PromoCode, code.strip().upper())
    promo.disabled = True
    return promo
