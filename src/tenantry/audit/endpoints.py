"""`/v1/admin/audit`: the operators' actions, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from tenantry.audit import trail
from tenantry.auth.access import PlatformOperator
from tenantry.db import PlatformReader
from tenantry.kit.pagination import Page, PageQuery, page_of
from tenantry.models import AuditRecord

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class AuditRead(BaseModel):
    id: str
    actor: str
    action: str
    target: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    occurred_at: datetime


def _read(entry: AuditRecord) -> AuditRead:
    return AuditRead.model_validate(entry, from_attributes=True)


def _key(entry: AuditRecord) -> tuple[datetime, str]:
    return entry.occurred_at, str(entry.seq)


@router.get(
    "/audit",
    response_model=Page[AuditRead],
    summary="The audit trail: who did what, why, before and after",
)
async def list_audit(
    _: PlatformOperator,
    session: PlatformReader,
    page: PageQuery,
    since: Annotated[AwareDatetime | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    before_seq = int(page.after[1]) if page.after and page.after[1].isdigit() else None
    rows = await trail.list_records(
        session, since=since, action=action, before_seq=before_seq, limit=page.limit + 1
    )
    return page_of(rows, page.limit, _read, key=_key)
