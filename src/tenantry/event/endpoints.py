"""`/v1/tenants/{tenant_id}/events`: the tenant's event log, for polling integrations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from tenantry.auth.access import EventReader
from tenantry.db import DbReader
from tenantry.event import service
from tenantry.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/v1/tenants/{tenant_id}/events", tags=["events"])


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    tenant_id: str | None
    trace_id: str | None
    occurred_at: datetime
    data: dict[str, Any]


@router.get(
    "",
    response_model=Page[EventRead],
    summary="Events in the order they happened; `after` = the last event id seen",
)
async def list_events(
    tenant_id: str,
    _: EventReader,
    session: DbReader,
    type: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[EventRead]:
    rows = await service.list_events(session, tenant_id, type_=type, after=after, limit=limit + 1)
    page = rows[:limit]
    return Page(
        data=[EventRead.model_validate(event) for event in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )
