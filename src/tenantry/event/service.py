"""Append events; the trace id of the request or job that caused them comes along."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import ValidationFailed
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.logging import current_trace_id
from tenantry.models import Event, EventCount
from tenantry.webhook import fanout

# The activation funnel's stages, in order; each real one is also counted in its hour.
FUNNEL_STAGES = (
    "activation.SignupStarted",
    "activation.EmailVerified",
    "activation.TenantProvisioned",
    "activation.InvitationCreated",
    "activation.InvitationAccepted",
    "activation.ActivationCompleted",
)


def record(
    session: AsyncSession,
    type_: str,
    *,
    tenant_id: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
    synthetic: bool = False,
) -> Event:
    """Add an event to the caller's transaction (it exists if and only if that commits).

    `synthetic` marks the canary's traffic, which no report counts. A tenant's event goes
    out to its webhook endpoints: their messages are written with it (tenantry.webhook.fanout)."""
    event = Event(
        id=new_id("evt"),
        type=type_,
        tenant_id=tenant_id,
        subject_id=subject_id,
        trace_id=current_trace_id(),
        occurred_at=utcnow(),
        data=data or {},
        synthetic=synthetic,
    )
    session.add(event)
    fanout.mark(session, event)
    if type_ in FUNNEL_STAGES and not synthetic:
        hour = event.occurred_at.replace(minute=0, second=0, microsecond=0)
        session.add(EventCount(hour=hour, type=type_, n=1))
    return event


async def list_events(
    session: AsyncSession,
    tenant_id: str,
    *,
    type_: str | None,
    after: str | None,
    limit: int,
) -> list[Event]:
    """A tenant's events in the order they happened; `after` is the id of the last one seen."""
    query = (
        select(Event)
        .where(Event.tenant_id == tenant_id)
        .order_by(Event.occurred_at, Event.id)
        .limit(limit)
    )
    if type_ is not None:
        query = query.where(Event.type == type_)
    if after is not None:
        seen = await session.get(Event, after)
        if seen is None or seen.tenant_id != tenant_id:
            raise ValidationFailed(
                "The cursor is not valid",
                errors=[{"field": "after", "message": "not an event of this tenant"}],
            )
        query = query.where(tuple_(Event.occurred_at, Event.id) > (seen.occurred_at, seen.id))
    return list((await session.execute(query)).scalars())
