"""`GET /v1/status` and the `/status` page: the open incident's latest post, for everyone."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from tenantry.db import PlatformReader
from tenantry.incident import service
from tenantry.pages import page

router = APIRouter(tags=["status"])
pages = APIRouter(include_in_schema=False)


class NoticeRead(BaseModel):
    id: str
    title: str
    state: str
    message: str
    updated_at: datetime


class StatusRead(BaseModel):
    status: Literal["operational", "incident"]
    incident: NoticeRead | None


async def _status(session: PlatformReader) -> StatusRead:
    notice = await service.current_notice(session)
    if notice is None:
        return StatusRead(status="operational", incident=None)
    incident = NoticeRead(
        id=notice.incident.id,
        title=notice.incident.title,
        state=notice.latest.status,
        message=notice.latest.message,
        updated_at=notice.latest.posted_at,
    )
    return StatusRead(status="incident", incident=incident)


@router.get("/v1/status", response_model=StatusRead, summary="Operational, or the open incident")
async def read_status(session: PlatformReader) -> StatusRead:
    return await _status(session)


@pages.get("/status", response_class=HTMLResponse)
async def status_page(request: Request, session: PlatformReader) -> HTMLResponse:
    status = await _status(session)
    notice = status.incident
    shown = None
    if notice is not None:
        shown = {**notice.model_dump(), "updated_at": f"{notice.updated_at:%Y-%m-%d %H:%M}"}
    return page(request, "status.html.j2", incident=shown)
