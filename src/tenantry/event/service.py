"""Append events; the trace id of the request or job that caused them comes along."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.models import Event


def record(
    session: AsyncSession,
    type_: str,
    *,
    tenant_id: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Add an event to the caller's transaction (it exists if and only if that commits)."""
    trace_id = structlog.contextvars.get_contextvars().get("trace_id")
    event = Event(
        id=new_id("evt"),
        type=type_,
        tenant_id=tenant_id,
        subject_id=subject_id,
        trace_id=trace_id if isinstance(trace_id, str) else None,
        occurred_at=utcnow(),
        data=data or {},
    )
    session.add(event)
    return event
