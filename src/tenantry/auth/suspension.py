"""Suspended tenants as the auth layer sees them: the set every process keeps in memory
(tenantry.auth.trust) and checks on each tenant route and key exchange."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.models import Tenant, TenantStatus

SUSPENSION_TOPIC = "tenant.suspension"  # in-process: (tenant id, suspended?) just committed


async def suspended_tenants(session: AsyncSession) -> frozenset[str]:
    query = select(Tenant.id).where(Tenant.status == TenantStatus.SUSPENDED.value)
    return frozenset((await session.execute(query)).scalars())
