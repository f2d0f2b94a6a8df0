"""`/v1/tenants/{tenant_id}`: the tenant, its members, its provisioning."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from tenantry.auth.access import MemberManager, TenantMember, deny
from tenantry.db import DbReader, DbSession
from tenantry.deps import SettingsDep
from tenantry.kit.pagination import Page, encode_cursor
from tenantry.models import SignupStatus
from tenantry.provisioning.service import checkpoints, step_view
from tenantry.tenant import members, service

router = APIRouter(prefix="/v1/tenants/{tenant_id}", tags=["tenants"])


@router.get("", summary="The tenant")
async def read_tenant(tenant_id: str, _: TenantMember, session: DbReader) -> dict[str, Any]:
    tenant = await service.get_tenant(session, tenant_id)
    return {
        "id": tenant.id,
        "slug": tenant.slug,
        "name": tenant.name,
        "plan": tenant.plan,
        "status": tenant.status,
        "settings": tenant.settings,
        "created_at": tenant.created_at,
    }


@router.get("/members", summary="Members of the tenant, oldest first")
async def list_members(
    tenant_id: str, _: TenantMember, session: DbReader, page: Page
) -> dict[str, Any]:
    rows = await service.list_members(session, tenant_id, after=page.after, limit=page.limit + 1)
    more, rows = len(rows) > page.limit, rows[: page.limit]
    last = rows[-1][0] if more else None
    return {
        "data": [
            {
                "user_id": user.id,
                "email": user.email,
                "name": user.name,
                "role": membership.role,
                "joined_at": membership.created_at,
            }
            for membership, user in rows
        ],
        "next_cursor": encode_cursor(last.created_at, last.user_id) if last else None,
    }


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["owner", "admin", "member"]


@router.patch("/members/{user_id}", summary="Change a member's role (a tenant keeps an owner)")
async def change_role(
    tenant_id: str,
    user_id: str,
    payload: RoleChange,
    principal: MemberManager,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
) -> dict[str, Any]:
    try:
        membership = await members.change_role(
            session, settings, principal, tenant_id, user_id, payload.role
        )
    except members.OwnersOnly as exc:
        raise deny(request, principal, "role_mismatch", exc.detail) from None
    return {"user_id": membership.user_id, "role": membership.role}


@router.delete(
    "/members/{user_id}", status_code=204, summary="Remove a member (a tenant keeps an owner)"
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


@router.get("/provisioning", summary="How the tenant's provisioning went, step by step")
async def read_provisioning(tenant_id: str, _: TenantMember, session: DbReader) -> dict[str, Any]:
    await service.get_tenant(session, tenant_id)
    signup = await service.signup_of(session, tenant_id)
    if signup is None:
        return {"status": "completed", "steps": []}
    return {
        "status": service.PROVISIONING_STATUS.get(SignupStatus(signup.status), "pending"),
        "steps": [step_view(c) for c in await checkpoints(session, signup.id)],
    }
