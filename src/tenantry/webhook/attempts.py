"""Writing an attempt's outcome: the attempt row, the delivery's next state, and the
endpoint's health (a success ends a failure streak; `410 Gone` or five days without a
success disable the endpoint, tell the tenant's owners, and write
`webhook.EndpointDisabled`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, or_, select, update
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
    session: AsyncSession, settings: Settings, claimed: Claimed, result: Result
) -> bool:
    """Everything one attempt changes, in the caller's transaction. False when the lease
    was lost meanwhile (the attempt is recorded; the delivery belongs to another)."""
    now = utcnow()
    attempt = claimed.attempts + 1
    retry_at = None
    if not result.succeeded and not result.gone:
        answer = result.answer
        delay = next_delay(
            attempt,
            retry_after_s=answer.retry_after_s if answer else None,
            status=answer.status if answer else None,
        )
        retry_at = now + delay if delay is not None else None
    owned = await transitions.finish(
        session, claimed, succeeded=result.succeeded, retry_at=retry_at
    )
    session.add(_attempt_row(claimed, attempt, result, now, retry_at))
    if result.succeeded:
        await _succeeded(session, claimed.endpoint_id, now)
    else:
        await _failed(session, settings, claimed.endpoint_id, now, gone=result.gone)
    return owned


def _attempt_row(
    claimed: Claimed, attempt: int, result: Result, now: datetime, retry_at: datetime | None
) -> WebhookAttempt:
    answer = result.answer
    return WebhookAttempt(
        id=new_id("wha"),
        tenant_id=claimed.tenant_id,
        endpoint_id=claimed.endpoint_id,
        delivery_id=claimed.id,
        message_id=claimed.message_id,
        event_type=claimed.event_type,
        attempt=attempt,
        status="succeeded" if result.succeeded else "failed",
        response_status=answer.status if answer else None,
        response_excerpt=answer.excerpt if answer else None,
        duration_ms=result.duration_ms,
        error=(result.error or "")[:MAX_ERROR_CHARS] or None,
        trigger=claimed.trigger,
        created_at=now,
        next_attempt_at=retry_at,
    )


async def _succeeded(session: AsyncSession, endpoint_id: str, now: datetime) -> None:
    stale = now.timestamp() - SUCCESS_STAMP_S
    await session.execute(
        update(endpoints)
        .where(
            endpoints.c.id == endpoint_id,
            or_(
                endpoints.c.failing_since.is_not(None),
                endpoints.c.last_success_at.is_(None),
                endpoints.c.last_success_at < datetime.fromtimestamp(stale, now.tzinfo),
            ),
        )
        .values(failing_since=None, last_success_at=now)
    )


async def _failed(
    session: AsyncSession, settings: Settings, endpoint_id: str, now: datetime, *, gone: bool
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
    if gone:
        await disable(session, settings, endpoint_id, reason=GONE_REASON)
    elif since is not None and now - since >= settings.webhook_disable_after:
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
