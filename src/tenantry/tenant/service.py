"""Reads of tenants, members and provisioning state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.models import Membership, SignupSession, SignupStatus, Tenant, TenantStatus, User
from tenantry.tenant import transitions


async def get_tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    return await get_or_404(session, Tenant, tenant_id, tenant_id=tenant_id)


async def list_tenants(
    session: AsyncSession, *, status: str | None = None, limit: int = 50
) -> Sequence[Tenant]:
    query = select(Tenant).order_by(Tenant.created_at.desc(), Tenant.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Tenant.status == status)
    return (await session.execute(query)).scalars().all()


async def list_members(
    session: AsyncSession, tenant_id: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[tuple[Membership, User]]:
    """Members oldest first; `after` is the (joined at, user id) of the last one seen."""
    query = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == tenant_id)
        .order_by(Membership.created_at, Membership.user_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(Membership.created_at, Membership.user_id) > after)
    return [(membership, user) for membership, user in await session.execute(query)]


async def signup_of(session: AsyncSession, tenant_id: str) -> SignupSession | None:
    query = select(SignupSession).where(SignupSession.tenant_id == tenant_id).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


PROVISIONING_STATUS = {
    SignupStatus.EMAIL_VERIFIED: "pending",
    SignupStatus.PROVISIONING: "processing",
    SignupStatus.PROVISIONED: "completed",
    SignupStatus.REVIEW_REQUIRED: "review_required",
    SignupStatus.FAILED: "failed",
    SignupStatus.EXPIRED: "failed",
}


async def set_suspended(
    session: AsyncSession, tenant_id: str, suspended: bool, *, reason: str, by: str
) -> Tenant:
    """Suspend or reactivate a tenant (operators: admin API and CLI); `409 TENANT_STATE` when it
    is so already."""
    tenant = await get_or_404(session, Tenant, tenant_id, tenant_id=ANY_TENANT, for_update=True)
    before = {"status": tenant.status}
    to = TenantStatus.SUSPENDED if suspended else TenantStatus.ACTIVE
    await transitions.move(session, tenant, to, reason=reason, by=by)
    action = "tenant.suspend" if suspended else "tenant.reactivate"
    await trail.record(
        session,
        actor=by,
        action=action,
        target=tenant_id,
        reason=reason,
        before=before,
        after={"status": to.value},
    )
    return tenant
