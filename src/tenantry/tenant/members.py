"""Member management: change a role, remove a member; a tenant always keeps an owner.

Every change runs under the tenant's row lock, taken by the route's access check
(`CurrentTenantAccess`, which also reads the caller's role as it is now), so two
owners demoting each other at once are ordered: the second is refused (it is no
owner any more, or it would remove the last one), never deadlocked. Only an owner
may touch an owner or make one. A change or a removal cuts off the member's
tokens for the tenant at once; a removed member's refresh tokens are revoked, a
re-ranked member's refresh into tokens with the new role.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.principals import Principal
from tenantry.auth.revocation import cut_off_member
from tenantry.config import Settings
from tenantry.errors import NotFound, TenantryError
from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.models import Membership, RefreshToken

OWNER = "owner"


class LastOwner(TenantryError):
    status, code, title = 409, "LAST_OWNER", "A tenant must keep an owner"


class OwnersOnly(TenantryError):
    status, code, title = 403, "FORBIDDEN", "Only an owner can do this"


async def _membership(session: AsyncSession, tenant_id: str, user_id: str) -> Membership:
    membership = await session.get(Membership, (tenant_id, user_id), with_for_update=True)
    if membership is None:
        raise NotFound(f"{user_id} is not a member of this tenant")
    return membership


async def _keep_an_owner(session: AsyncSession, tenant_id: str, membership: Membership) -> None:
    if membership.role != OWNER:
        return
    owners = (
        select(Membership.user_id)
        .where(Membership.tenant_id == tenant_id, Membership.role == OWNER)
        .with_for_update()
    )
    if len((await session.execute(owners)).all()) <= 1:
        raise LastOwner("This is the tenant's last owner: make someone else owner first")


def _require_owner(caller: Principal, membership: Membership, new_role: str | None) -> None:
    if OWNER in caller.roles:
        return
    if membership.role == OWNER or new_role == OWNER:
        raise OwnersOnly("Only an owner can change an owner or make one")


async def change_role(
    session: AsyncSession,
    settings: Settings,
    caller: Principal,
    tenant_id: str,
    user_id: str,
    role: str,
) -> Membership:
    membership = await _membership(session, tenant_id, user_id)
    _require_owner(caller, membership, role)
    if role != OWNER:
        await _keep_an_owner(session, tenant_id, membership)
    previous, membership.role = membership.role, role
    if previous != role:
        await cut_off_member(session, settings, tenant_id, user_id, f"role {previous} → {role}")
    events.record(
        session,
        "member.RoleChanged",
        tenant_id=tenant_id,
        subject_id=user_id,
        data={"from": previous, "to": role, "by": caller.subject},
    )
    return membership


async def remove(
    session: AsyncSession, settings: Settings, caller: Principal, tenant_id: str, user_id: str
) -> None:
    membership = await _membership(session, tenant_id, user_id)
    _require_owner(caller, membership, None)
    await _keep_an_owner(session, tenant_id, membership)
    await session.delete(membership)
    await cut_off_member(session, settings, tenant_id, user_id, "removed from the tenant")
    await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.tenant_id == tenant_id,
            RefreshToken.user_id == user_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    events.record(
        session,
        "member.Removed",
        tenant_id=tenant_id,
        subject_id=user_id,
        data={"by": caller.subject},
    )
