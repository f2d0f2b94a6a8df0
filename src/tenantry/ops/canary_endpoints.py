"""`/v1/internal/canary/…`: the canary's inbox and its record, so that it can run from outside."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from tenantry.auth.access import AdminOrService
from tenantry.db import PlatformReader, PlatformSession
from tenantry.deps import SettingsDep
from tenantry.mail import service as mail_service
from tenantry.ops import canary_runs
from tenantry.ops.canary import Run

router = APIRouter(prefix="/v1/internal/canary", tags=["internal"])


class CanaryMessage(BaseModel):
    id: str
    template: str
    subject: str
    created_at: datetime
    secrets: dict[str, Any]  # the code or link the mail would have carried


class CanaryInbox(BaseModel):
    items: list[CanaryMessage]


@router.get(
    "/messages",
    response_model=CanaryInbox,
    summary="Mail held for a canary address (never sent), newest first, with its secrets",
)
async def canary_messages(
    _: AdminOrService,
    session: PlatformReader,
    settings: SettingsDep,
    to: Annotated[str, Query(max_length=320)],
) -> dict[str, Any]:
    return {"items": await mail_service.canary_messages(session, settings, to)}


class CanaryRunWrite(BaseModel):
    started_at: AwareDatetime
    stages: dict[str, float]  # milliseconds
    breaches: list[str] = []
    failure: str | None = Field(default=None, max_length=32)
    stage: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, max_length=2000)
    origin: str = Field(default="remote", max_length=40)


class CanaryRunKept(BaseModel):
    id: str


@router.post(
    "/runs",
    status_code=201,
    response_model=CanaryRunKept,
    summary="Keep the result of a canary run made from outside (the CLI posts it)",
)
async def record_run(
    caller: AdminOrService, session: PlatformSession, body: CanaryRunWrite
) -> dict[str, str]:
    run = Run(
        durations={stage: ms / 1000 for stage, ms in body.stages.items()},
        failure=body.failure,
        failed_stage=body.stage,
        error=body.error,
        breaches=body.breaches,
    )
    row = canary_runs.record(session, run, started_at=body.started_at, origin=body.origin)
    return {"id": row.id}
