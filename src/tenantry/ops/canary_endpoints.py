"""`/v1/internal/canary/messages`: the canary's inbox, so that it can run from outside."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tenantry.auth.access import AdminOrService
from tenantry.db import PlatformReader
from tenantry.deps import SettingsDep
from tenantry.mail import service as mail_service

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
