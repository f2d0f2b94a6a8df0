"""`/v1/admin/tenants/{tenant_id}`: operators suspend and reactivate tenants."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.access import PlatformAdmin
from tenantry.auth.principals import Principal
from tenantry.db import PlatformSession
from tenantry.openapi import problems
from tenantry.tenant import service
from tenantry.tenant.schemas import TenantRead

router = APIRouter(prefix="/v1/admin/tenants/{tenant_id}", tags=["admin"])


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=1, max_length=500)


async def _set(
    tenant_id: str, suspended: bool, payload: Reason, caller: Principal, session: AsyncSession
) -> TenantRead:
    tenant = await service.set_suspended(
        session, tenant_id, suspended, reason=payload.reason, by=caller.subject
    )
    return TenantRead.model_validate(tenant)


@router.post(
    "/suspend",
    responses=problems(409),
    response_model=TenantRead,
    summary="Suspend: its tokens and keys are refused (403 tenant_suspended), its jobs wait",
)
async def suspend(
    tenant_id: str, payload: Reason, caller: PlatformAdmin, session: PlatformSession
) -> TenantRead:
    return await _set(tenant_id, True, payload, caller, session)


@router.post(
    "/reactivate", responses=problems(409), response_model=TenantRead, summary="Lift a suspension"
)
async def reactivate(
    tenant_id: str, payload: Reason, caller: PlatformAdmin, session: PlatformSession
) -> TenantRead:
    return await _set(tenant_id, False, payload, caller, session)
