"""`/v1/admin/flags` and `/v1/admin/degraded`: operators' switches over HTTP, each change
audited with the caller as its actor."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tenantry.auth.access import PlatformAdmin, PlatformOperator
from tenantry.db import PlatformReader, PlatformSession
from tenantry.flag import service
from tenantry.flag.board import SwitchState
from tenantry.openapi import problems

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class SwitchRead(BaseModel):
    name: str
    enabled: bool
    reason: str | None
    changed_by: str | None
    changed_at: datetime | None


class SwitchChange(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    enabled: bool
    reason: str = Field(min_length=1, max_length=500)


class FlagList(BaseModel):
    data: list[SwitchRead]


def _read(state: SwitchState) -> SwitchRead:
    return SwitchRead.model_validate(state, from_attributes=True)


@router.get("/flags", response_model=FlagList, summary="Every feature flag (on unless set off)")
async def list_flags(_: PlatformOperator, session: PlatformReader) -> FlagList:
    return FlagList(data=[_read(state) for state in await service.flags(session)])


@router.put(
    "/flags/{name}",
    responses=problems(404),
    response_model=SwitchRead,
    summary="Turn a flag on or off (every process follows within about a second)",
)
async def set_flag(
    name: str, payload: SwitchChange, caller: PlatformAdmin, session: PlatformSession
) -> SwitchRead:
    state = await service.set_flag(
        session, name, payload.enabled, reason=payload.reason, by=caller.subject
    )
    return _read(state)


@router.get("/degraded", response_model=SwitchRead, summary="Degraded mode: on or off, and why")
async def read_degraded(_: PlatformOperator, session: PlatformReader) -> SwitchRead:
    return _read(await service.degraded(session))


@router.put(
    "/degraded",
    response_model=SwitchRead,
    summary="Enter or leave degraded mode: emergency admission caps, health says degraded",
)
async def set_degraded(
    payload: SwitchChange, caller: PlatformAdmin, session: PlatformSession
) -> SwitchRead:
    state = await service.set_degraded(
        session, payload.enabled, reason=payload.reason, by=caller.subject
    )
    return _read(state)
