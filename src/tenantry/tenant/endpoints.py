"""`/v1/tenants/{tenant_id}`: the tenant, its members, its provisioning."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from tenantry.auth.access import MemberManager, TenantMember, deny
from tenantry.db import DbReader, DbSession
from tenantry.deps import SettingsDep
from tenantry.kit.pagination import Page, PageQuery, encode_cursor
from tenantry.models import SignupStatus
from tenantry.openapi import problems
from tenantry.provisioning.service import checkpoints, step_view
from tenantry.tenant import members, service
from tenantry.tenant.schemas import (
    MemberRead,
    MemberRole,
    ProvisioningRead,
    RoleChange,
    TenantRead,
)

router = APIRouter(prefix="/v1/tenants/{tenant_id}", tags=["tenants"])


@router.get("", response_model=TenantRead, summary="The tenant")
async def read_tenant(tenant_id: str, _: TenantMember, session: DbReader) -> TenantRead:
    return TenantRead.model_validate(await service.get_tenant(session, tenant_id))


@router.get("/members", response_model=Page[MemberRead], summary="Members, oldest first")
async def list_members(
    tenant_id: str, _: TenantMember, session: DbReader, page: PageQuery
) -> Page[MemberRead]:
    rows = await service.list_members(session, tenant_id, after=page.after, limit=page.limit + 1)
    more, rows = len(rows) > page.limit, rows[: page.limit]
    last = rows[-1][0] if more else None
    members_read = [
        MemberRead(
            user_id=user.id,
            email=user.email,
            name=user.name,
            role=membership.role,
            joined_at=membership.created_at,
        )
        for membership, user in rows
    ]
    cursor = encode_cursor(last.created_at, last.user_id) if last else None
    return Page(data=members_read, next_cursor=cursor)


@router.patch(
    "/members/{user_id}",
    responses=problems(409),
    response_model=MemberRole,
    summary="Change a member's role (a tenant keeps an owner)",
)
async def change_role(
    tenant_id: str,
    user_id: str,
    payload: RoleChange,
    principal: MemberManager,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
) -> MemberRole:
    try:
        membership = await members.change_role(
            session, settings, principal, tenant_id, user_id, payload.role
        )
    except members.OwnersOnly as exc:
        raise deny(request, principal, "role_mismatch", exc.detail) from None
    return MemberRole(user_id=membership.user_id, role=membership.role)


@router.delete(
    "/members/{user_id}",
    responses=problems(409),
    status_code=204,
    summary="Remove a member (a tenant keeps an owner)",
)
async def remove_member(
    tenant_id: str,
    user_id: str,
    principal: MemberManager,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
) -> Response:
    try:
        await members.remove(session, settings, principal, tenant_id, user_id)
    except members.OwnersOnly as exc:
        raise deny(request, principal, "role_mismatch", exc.detail) from None
    return Response(status_code=204)


@router.get(
    "/provisioning",
    response_model=ProvisioningRead,
    summary="How the tenant's provisioning went, step by step",
)
async def read_provisioning(tenant_id: str, _: TenantMember, session: DbReader) -> dict[str, Any]:
    await service.get_tenant(session, tenant_id)
    signup = await service.signup_of(session, tenant_id)
    if signup is None:
        return {"status": "completed", "steps": []}
    return {
        "status": service.PROVISIONING_STATUS.get(SignupStatus(signup.status), "pending"),
        "steps": [step_view(c) for c in await checkpoints(session, signup.id)],
    }
