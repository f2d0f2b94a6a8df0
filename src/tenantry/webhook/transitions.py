"""The state machines of webhook endpoints and deliveries: every status change of either.

A delivery: pending → delivering (claimed by a dispatcher, under a lease) →
succeeded | pending (a retry is scheduled) | failed (the schedule is spent, or the
endpoint is gone); a lease that runs out puts it back to pending; an operator or the
tenant puts a failed or succeeded one back to pending (a manual attempt). Each claim
has a token: an outcome is written only while the row still holds it, so a dispatcher
that stalled past its lease changes nothing that another one took over.

An endpoint: enabled ⇄ disabled (by its owners, an operator, a `410 Gone`, or days of
failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.machine import Machine
from tenantry.models import (
    DeliveryStatus,
    EndpointStatus,
    Tenant,
    TenantStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)

D = DeliveryStatus
E = EndpointStatus
deliveries = cast(Table, WebhookDelivery.__table__)
endpoints = cast(Table, WebhookEndpoint.__table__)
messages = cast(Table, WebhookMessage.__table__)
tenants = cast(Table, Tenant.__table__)

ENDPOINT_MOVES = {E.ENABLED: frozenset({E.DISABLED}), E.DISABLED: frozenset({E.ENABLED})}


class EndpointStateConflict(TenantryError):
    status, code, title = 409, "WEBHOOK_ENDPOINT_STATE", "The endpoint is not in that state"


ENDPOINT = Machine(WebhookEndpoint, ENDPOINT_MOVES, EndpointStateConflict)


async def set_endpoint_enabled(
    session: AsyncSession, endpoint: WebhookEndpoint, enabled: bool, *, reason: str | None
) -> bool:
    """Enable or disable; False when it already was (or another writer got there first).
    Enabling clears the failure streak: the five days start again."""
    to = E.ENABLED if enabled else E.DISABLED
    if endpoint.status == to:
        return False
    changes: dict[str, Any] = {
        "updated_at": utcnow(),
        "disabled_reason": None if enabled else reason,
    }
    if enabled:
        changes["failing_since"] = None
    return await ENDPOINT.move(session, endpoint, to, **changes)


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to a dispatcher, with what it needs to send it."""

    id: str
    tenant_id: str
    message_id: str
    endpoint_id: str
    attempts: int  # made before this one
    trigger: str
    token: str  # the claim's: its outcome is written only while the row still holds it
    event_type: str
    payload: str
    url: str
    secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_expires_at: datetime | None
    rate_limit_per_s: int | None
    failing_since: datetime | None  # the endpoint's health, as claimed
    last_success_at: datetime | None


def _due(now: datetime) -> list[Any]:
    suspended = select(tenants.c.id).where(tenants.c.status == TenantStatus.SUSPENDED.value)
    enabled = select(endpoints.c.id).where(endpoints.c.status == E.ENABLED.value)
    return [
        deliveries.c.status == D.PENDING.value,
        deliveries.c.next_attempt_at <= now,
        deliveries.c.endpoint_id.in_(enabled),
        deliveries.c.tenant_id.not_in(suspended),
    ]


async def claim(
    session: AsyncSession, *, limit: int, lease: timedelta, per_endpoint: int
) -> list[Claimed]:
    """Lease up to `limit` due deliveries, fairly: round-robin over endpoints (the oldest
    due of each first), then over tenants, and no endpoint past `per_endpoint` deliveries
    in flight over all dispatchers. A slow endpoint fills its own slots, nobody else's."""
    now = utcnow()
    in_flight = (
        select(deliveries.c.endpoint_id, func.count().label("n"))
        .where(deliveries.c.status == D.DELIVERING.value)
        .group_by(deliveries.c.endpoint_id)
        .subquery("in_flight")
    )
    ranked = (
        select(
            deliveries.c.id,
            deliveries.c.tenant_id,
            deliveries.c.next_attempt_at,
            func.row_number()
            .over(
                partition_by=deliveries.c.endpoint_id,
                order_by=(deliveries.c.next_attempt_at, deliveries.c.id),
            )
            .label("turn"),
            func.coalesce(in_flight.c.n, 0).label("busy"),
        )
        .select_from(
            deliveries.outerjoin(in_flight, in_flight.c.endpoint_id == deliveries.c.endpoint_id)
        )
        .where(*_due(now))
        .subquery("ranked")
    )
    fair = (
        select(
            ranked.c.id,
            ranked.c.turn,
            func.row_number()
            .over(partition_by=ranked.c.tenant_id, order_by=(ranked.c.turn, ranked.c.id))
            .label("tenant_turn"),
        )
        .where(ranked.c.turn + ranked.c.busy <= per_endpoint)
        .subquery("fair")
    )
    chosen = (
        select(fair.c.id).order_by(fair.c.turn, fair.c.tenant_turn, fair.c.id).limit(limit)
    ).scalar_subquery()
    locked = (
        select(deliveries.c.id)
        .where(deliveries.c.id.in_(chosen), deliveries.c.status == D.PENDING.value)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(locked)).scalars())
    if not ids:
        return []
    token = new_id("wcl")
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids), deliveries.c.status == D.PENDING.value)
        .values(
            status=D.DELIVERING.value,
            claim_token=token,
            lease_expires_at=now + lease,
            updated_at=now,
        )
    )
    rows = await session.execute(
        select(
            deliveries.c.id,
            deliveries.c.tenant_id,
            deliveries.c.message_id,
            deliveries.c.endpoint_id,
            deliveries.c.attempts,
            deliveries.c.trigger,
            messages.c.event_type,
            messages.c.payload,
            endpoints.c.url,
            endpoints.c.secret_sealed,
            endpoints.c.previous_secret_sealed,
            endpoints.c.previous_secret_expires_at,
            endpoints.c.rate_limit_per_s,
            endpoints.c.failing_since,
            endpoints.c.last_success_at,
        )
        .join(messages, messages.c.id == deliveries.c.message_id)
        .join(endpoints, endpoints.c.id == deliveries.c.endpoint_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.next_attempt_at)
    )
    return [
        Claimed(
            row.id,
            row.tenant_id,
            row.message_id,
            row.endpoint_id,
            row.attempts,
            row.trigger,
            token,
            row.event_type,
            row.payload,
            row.url,
            row.secret_sealed,
            row.previous_secret_sealed,
            row.previous_secret_expires_at,
            row.rate_limit_per_s,
            row.failing_since,
            row.last_success_at,
        )
        for row in rows
    ]


def _held(claimed: Claimed) -> list[Any]:
    return [
        deliveries.c.id == claimed.id,
        deliveries.c.status == D.DELIVERING.value,
        deliveries.c.claim_token == claimed.token,
    ]


@dataclass(frozen=True)
class Finished:
    """How one claimed attempt ended: succeeded; else again at `retry_at`, or failed."""

    claimed: Claimed
    succeeded: bool
    retry_at: datetime | None

    @property
    def status(self) -> DeliveryStatus:
        if self.succeeded:
            return D.SUCCEEDED
        return D.PENDING if self.retry_at is not None else D.FAILED


async def still_there(session: AsyncSession, delivery_ids: Sequence[str]) -> set[str]:
    """Which of the deliveries exist, each locked (key share) until the transaction ends."""
    found = await session.execute(
        select(deliveries.c.id)
        .where(deliveries.c.id.in_(delivery_ids))
        .with_for_update(key_share=True)
    )
    return set(found.scalars())


async def finish(session: AsyncSession, outcomes: Sequence[Finished]) -> None:
    """Write attempts' outcomes in one statement, each only while its lease still holds:
    an outcome of a delivery another dispatcher took over changes nothing."""
    statement = (
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("b_id"),
            deliveries.c.status == D.DELIVERING.value,
            deliveries.c.claim_token == bindparam("b_token"),
        )
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            trigger="scheduled",
            next_attempt_at=bindparam("b_next", type_=deliveries.c.next_attempt_at.type),
            claim_token=None,
            lease_expires_at=None,
            updated_at=utcnow(),
        )
    )
    await session.execute(
        statement,
        [
            {
                "b_id": o.claimed.id,
                "b_token": o.claimed.token,
                "b_status": o.status.value,
                "b_attempts": o.claimed.attempts + 1,
                "b_next": o.retry_at,
            }
            for o in outcomes
        ],
    )


async def put_back(session: AsyncSession, claimed: Claimed, *, at: datetime) -> None:
    """Return a claimed delivery unsent (its endpoint's rate limit, or shutdown): no attempt
    was made, so none is counted."""
    await session.execute(
        update(deliveries)
        .where(*_held(claimed))
        .values(
            status=D.PENDING.value,
            next_attempt_at=at,
            claim_token=None,
            lease_expires_at=None,
            updated_at=utcnow(),
        )
    )


async def renew(session: AsyncSession, held: Sequence[Claimed], lease: timedelta) -> None:
    """Extend the leases of the deliveries a live dispatcher still holds."""
    if held:
        await session.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_([c.id for c in held]),
                deliveries.c.status == D.DELIVERING.value,
                deliveries.c.claim_token.in_({c.token for c in held}),
            )
            .values(lease_expires_at=utcnow() + lease)
        )


async def reap(session: AsyncSession) -> int:
    """Take back deliveries whose dispatcher lost its lease (crashed or stalled); they go
    again at once, with the same message id."""
    now = utcnow()
    result = await session.execute(
        update(deliveries)
        .where(deliveries.c.status == D.DELIVERING.value, deliveries.c.lease_expires_at < now)
        .values(
            status=D.PENDING.value,
            next_attempt_at=now,
            claim_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .returning(deliveries.c.id)
    )
    return len(result.all())


async def resend(session: AsyncSession, delivery_ids: Sequence[str]) -> int:
    """Manual attempts, due now: a failed or succeeded delivery goes again; a pending one
    is brought forward. One in flight is left to finish."""
    if not delivery_ids:
        return 0
    now = utcnow()
    result = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id.in_(delivery_ids),
            deliveries.c.status.in_([D.FAILED.value, D.SUCCEEDED.value, D.PENDING.value]),
        )
        .values(status=D.PENDING.value, trigger="manual", next_attempt_at=now, updated_at=now)
        .returning(deliveries.c.id)
    )
    return len(result.all())
