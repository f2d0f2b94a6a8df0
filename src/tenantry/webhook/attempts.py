"""Writing an attempt's outcome: the attempt row, the delivery's next state, and the
endpoint's health (a success ends a failure streak; `410 Gone` or five days without a
success disable the endpoint, tell the tenant's owners, and write
`webhook.EndpointDisabled`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.event import service as events
from tenantry.incident.service import owners_of
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.mail.service import queue_mail
from tenantry.models import WebhookAttempt, WebhookEndpoint
from tenantry.webhook import transitions
from tenantry.webhook.client import Answer
from tenantry.webhook.schedule import next_delay
from tenantry.webhook.transitions import Claimed

endpoints = cast(Table, WebhookEndpoint.__table__)
GONE = 410
GONE_REASON = "gone"
FAILING_REASON = "failing"
DISABLED_EVENT = "webhook.EndpointDisabled"
DISABLED_TEMPLATE = "webhook_disabled"
MAX_ERROR_CHARS = 500
# A success refreshes `last_success_at` at most this often: a busy endpoint's row is not
# written by every delivery.
SUCCESS_STAMP_S = 60


@dataclass(frozen=True)
class Result:
    """One attempt: the answer, or the error that stood in for one."""

    answer: Answer | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.answer is not None and 200 <= self.answer.status < 300

    @property
    def gone(self) -> bool:
        return self.answer is not None and self.answer.status == GONE


async def record(
    session: AsyncSession, settings: Settings, outcomes: Sequence[tuple[Claimed, Result]]
) -> None:
    """Everything a batch of attempts changes, in the caller's transaction: the deliveries'
    next states, one attempt row each, and their endpoints' health."""
    now = utcnow()
    # An endpoint deleted meanwhile took its deliveries along: their outcomes have nowhere
    # to go. Those still here are locked against such a delete until this commits.
    kept = await transitions.still_there(session, [claimed.id for claimed, _ in outcomes])
    outcomes = [(claimed, result) for claimed, result in outcomes if claimed.id in kept]
    if not outcomes:
        return
    finished = [
        transitions.Finished(claimed, result.succeeded, _retry_at(claimed, result, now))
        for claimed, result in outcomes
    ]
    await transitions.finish(session, finished)
    await session.execute(
        insert(WebhookAttempt),
        [
            _attempt_row(done, result, now)
            for done, (_, result) in zip(finished, outcomes, strict=True)
        ],
    )
    await _health(session, settings, outcomes, now)


def _retry_at(claimed: Claimed, result: Result, now: datetime) -> datetime | None:
    if result.succeeded or result.gone:
        return None
    answer = result.answer
    delay = next_delay(
        claimed.attempts + 1,
        retry_after_s=answer.retry_after_s if answer else None,
        status=answer.status if answer else None,
    )
    return now + delay if delay is not None else None


def _attempt_row(done: transitions.Finished, result: Result, now: datetime) -> dict[str, Any]:
    claimed, answer = done.claimed, result.answer
    return {
        "id": new_id("wha"),
        "tenant_id": claimed.tenant_id,
        "endpoint_id": claimed.endpoint_id,
        "delivery_id": claimed.id,
        "message_id": claimed.message_id,
        "event_type": claimed.event_type,
        "attempt": claimed.attempts + 1,
        "status": "succeeded" if result.succeeded else "failed",
        "response_status": answer.status if answer else None,
        "response_excerpt": answer.excerpt if answer else None,
        "duration_ms": result.duration_ms,
        "error": (result.error or "")[:MAX_ERROR_CHARS] or None,
        "trigger": claimed.trigger,
        "created_at": now,
        "next_attempt_at": done.retry_at,
    }


async def _health(
    session: AsyncSession,
    settings: Settings,
    outcomes: Sequence[tuple[Claimed, Result]],
    now: datetime,
) -> None:
    """A success ends an endpoint's failure streak; a `410` disables it; a failure starts a
    streak, and one five days long disables it."""
    succeeded = {c.endpoint_id: c for c, r in outcomes if r.succeeded}
    gone = {c.endpoint_id for c, r in outcomes if r.gone}
    failed = {c.endpoint_id for c, r in outcomes if not r.succeeded} - set(succeeded) - gone
    stale = now - timedelta(seconds=SUCCESS_STAMP_S)
    for claimed in succeeded.values():
        last = claimed.last_success_at
        if claimed.failing_since is not None or last is None or last < stale:
            await session.execute(
                update(endpoints)
                .where(endpoints.c.id == claimed.endpoint_id)
                .values(failing_since=None, last_success_at=now)
            )
    for endpoint_id in sorted(gone):
        await disable(session, settings, endpoint_id, reason=GONE_REASON)
    for endpoint_id in sorted(failed):
        await _failed(session, settings, endpoint_id, now)


async def _failed(
    session: AsyncSession, settings: Settings, endpoint_id: str, now: datetime
) -> None:
    await session.execute(
        update(endpoints)
        .where(endpoints.c.id == endpoint_id, endpoints.c.failing_since.is_(None))
        .values(failing_since=now)
    )
    since = (
        await session.execute(
            select(endpoints.c.failing_since).where(endpoints.c.id == endpoint_id)
        )
    ).scalar_one_or_none()
    if since is not None and now - since >= settings.webhook_disable_after:
        days = settings.webhook_disable_after.total_seconds() / 86400
        reason = f"{FAILING_REASON}: no success in {days:g} days"
        await disable(session, settings, endpoint_id, reason=reason)


def receiver_gave_up(endpoint: WebhookEndpoint) -> bool:
    """Disabled because of its receiver's answers, not by a person."""
    return not endpoint.enabled and (endpoint.disabled_reason or "").startswith(
        (GONE_REASON, FAILING_REASON)
    )


async def disable(
    session: AsyncSession, settings: Settings, endpoint_id: str, *, reason: str
) -> None:
    """Disable an endpoint the receiver gave up on, once: write the event, mail the owners."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or not endpoint.enabled:
        return
    if not await transitions.set_endpoint_enabled(session, endpoint, False, reason=reason):
        return
    events.record(
        session,
        DISABLED_EVENT,
        tenant_id=endpoint.tenant_id,
        subject_id=endpoint.id,
        data={"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason},
    )
    for email, tenant_name, tenant_id in await owners_of(session, [endpoint.tenant_id]):
        context = {
            "tenant_name": tenant_name,
            "url": endpoint.url,
            "endpoint_id": endpoint.id,
            "reason": reason,
        }
        await queue_mail(
            session,
            settings,
            to=email,
            template=DISABLED_TEMPLATE,
            context=context,
            tenant_id=tenant_id,
        )
