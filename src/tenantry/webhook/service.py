"""A tenant's webhook endpoints (create, read, change, delete, rotate the secret), their
attempts, and sending messages again (one, or a time range's failures).

Operators reach the same functions through the admin API and the CLI; what they change
is audited by the caller (`by`), what a tenant changes is not an operator action.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.config import Settings
from tenantry.datadir import secret_keys
from tenantry.errors import NotFound, ValidationFailed
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.kit.repository import ANY_TENANT, get_or_404
from tenantry.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from tenantry.webhook import signing, transitions
from tenantry.webhook.addresses import (
    DestinationPolicy,
    ForbiddenDestination,
    Resolver,
    WebhookUrlForbidden,
)

TenantScope = Any  # a tenant id, or ANY_TENANT for operators
RECOVER_BATCH = 100
RECOVER_MAX = 10_000
EDITABLE = ("url", "description", "event_types", "enabled", "rate_limit_per_s")


async def check_url(settings: Settings, resolver: Resolver, url: str) -> None:
    """`400 WEBHOOK_URL_FORBIDDEN` unless the URL is one deliveries may go to now."""
    try:
        await DestinationPolicy.of(settings).check_destination(url, resolver)
    except ForbiddenDestination as exc:
        raise WebhookUrlForbidden(str(exc), reason=exc.error) from exc


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    resolver: Resolver,
    *,
    tenant_id: str,
    url: str,
    description: str,
    event_types: Sequence[str],
    enabled: bool,
    rate_limit_per_s: int | None,
) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its secret, which is never shown again."""
    await check_url(settings, resolver, url)
    secret = signing.new_secret()
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        tenant_id=tenant_id,
        url=url,
        description=description,
        event_types=list(event_types),
        status=(EndpointStatus.ENABLED if enabled else EndpointStatus.DISABLED).value,
        disabled_reason=None if enabled else "created disabled",
        rate_limit_per_s=rate_limit_per_s,
        secret_sealed=signing.seal_secret(secret, secret_keys(settings)[0]),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def get_endpoint(
    session: AsyncSession, endpoint_id: str, tenant_id: TenantScope, *, for_update: bool = False
) -> WebhookEndpoint:
    return await get_or_404(
        session, WebhookEndpoint, endpoint_id, tenant_id=tenant_id, for_update=for_update
    )


async def list_endpoints(
    session: AsyncSession,
    tenant_id: str,
    *,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Sequence[WebhookEndpoint]:
    """Newest first; `after` is the (created_at, id) of the last one already seen."""
    query = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.tenant_id == tenant_id)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(WebhookEndpoint.created_at, WebhookEndpoint.id) < after)
    return (await session.execute(query)).scalars().all()


def describe(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What an audit record keeps of an endpoint (never its secret)."""
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "rate_limit_per_s": endpoint.rate_limit_per_s,
    }


async def update_endpoint(
    session: AsyncSession,
    settings: Settings,
    resolver: Resolver,
    endpoint: WebhookEndpoint,
    changes: dict[str, Any],
    *,
    by: str,
) -> WebhookEndpoint:
    """Apply the fields present in `changes`; a new URL is checked like a new endpoint's."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(
            "Unknown fields", errors=[{"field": f, "message": "not editable"} for f in unknown]
        )
    if "url" in changes and changes["url"] != endpoint.url:
        await check_url(settings, resolver, changes["url"])
    if "enabled" in changes:
        await set_enabled(session, endpoint, bool(changes["enabled"]), by=by)
    for field in ("url", "description", "event_types", "rate_limit_per_s"):
        if field in changes:
            setattr(endpoint, field, changes[field])
    endpoint.updated_at = utcnow()
    await session.flush()
    return endpoint


async def operator_update(
    session: AsyncSession,
    settings: Settings,
    resolver: Resolver,
    endpoint_id: str,
    changes: dict[str, Any],
    *,
    by: str,
    reason: str | None,
) -> WebhookEndpoint:
    """An operator's correction of any tenant's endpoint, audited with before and after."""
    endpoint = await get_endpoint(session, endpoint_id, ANY_TENANT, for_update=True)
    before = describe(endpoint)
    await update_endpoint(session, settings, resolver, endpoint, changes, by=by)
    await trail.record(
        session,
        actor=by,
        action="webhook_endpoint.update",
        target=endpoint.id,
        reason=reason,
        before=before,
        after=describe(endpoint),
    )
    return endpoint


async def set_enabled(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    enabled: bool,
    *,
    by: str,
    reason: str | None = None,
) -> bool:
    """Switch deliveries to the endpoint on or off; False when it already was. While off
    its messages wait, pending, for it."""
    why = f"disabled by {by}" + (f": {reason}" if reason else "")
    return await transitions.set_endpoint_enabled(session, endpoint, enabled, reason=why)


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """The endpoint with its deliveries and attempts (its messages stay: other endpoints may
    share them)."""
    for model in (WebhookAttempt, WebhookDelivery):
        await session.execute(delete(model).where(model.endpoint_id == endpoint.id))
    await session.delete(endpoint)


async def rotate_secret(
    session: AsyncSession, settings: Settings, endpoint: WebhookEndpoint, grace: timedelta
) -> str:
    """A new secret; the one it replaces still signs (a second signature) for `grace`."""
    secret = signing.new_secret()
    now = utcnow()
    endpoint.previous_secret_sealed = endpoint.secret_sealed if grace > timedelta(0) else None
    endpoint.previous_secret_expires_at = now + grace if grace > timedelta(0) else None
    endpoint.secret_sealed = signing.seal_secret(secret, secret_keys(settings)[0])
    endpoint.updated_at = now
    await session.flush()
    return secret


async def list_attempts(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    status: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Sequence[WebhookAttempt]:
    """Newest first."""
    query = (
        select(WebhookAttempt)
        .where(
            WebhookAttempt.endpoint_id == endpoint.id,
            WebhookAttempt.tenant_id == endpoint.tenant_id,
        )
        .order_by(WebhookAttempt.created_at.desc(), WebhookAttempt.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(WebhookAttempt.status == status)
    if after is not None:
        query = query.where(tuple_(WebhookAttempt.created_at, WebhookAttempt.id) < after)
    return (await session.execute(query)).scalars().all()


async def retry_message(session: AsyncSession, endpoint: WebhookEndpoint, message_id: str) -> None:
    """One manual attempt of the message to this endpoint, due now."""
    delivery_id = (
        await session.execute(
            select(WebhookDelivery.id).where(
                WebhookDelivery.endpoint_id == endpoint.id,
                WebhookDelivery.tenant_id == endpoint.tenant_id,
                WebhookDelivery.message_id == message_id,
            )
        )
    ).scalar_one_or_none()
    if delivery_id is None:
        raise NotFound(f"no message {message_id} for endpoint {endpoint.id}")
    await transitions.resend(session, [delivery_id])


async def recover(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    since: datetime,
    until: datetime | None = None,
) -> int:
    """Send the endpoint's failed messages of [since, until) again, oldest first, at most
    10,000 a call (call again from the last one's time for more)."""
    query = (
        select(WebhookDelivery.id)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.tenant_id == endpoint.tenant_id,
            WebhookDelivery.status == DeliveryStatus.FAILED.value,
            WebhookMessage.created_at >= since,
        )
        .order_by(WebhookMessage.created_at, WebhookDelivery.id)
        .limit(RECOVER_MAX)
    )
    if until is not None:
        query = query.where(WebhookMessage.created_at < until)
    ids = list((await session.execute(query)).scalars())
    resent = 0
    for start in range(0, len(ids), RECOVER_BATCH):
        resent += await transitions.resend(session, ids[start : start + RECOVER_BATCH])
    return resent


async def backlog(session: AsyncSession, *, top: int = 10) -> tuple[int, list[tuple[str, int]]]:
    """Deliveries waiting (pending or in flight): in all, and the `top` endpoints with most."""
    waiting = WebhookDelivery.status.in_(
        [DeliveryStatus.PENDING.value, DeliveryStatus.DELIVERING.value]
    )
    total = (await session.execute(select(func.count()).where(waiting))).scalar_one()
    n = func.count().label("n")
    rows = await session.execute(
        select(WebhookDelivery.endpoint_id, n)
        .where(waiting)
        .group_by(WebhookDelivery.endpoint_id)
        .order_by(n.desc())
        .limit(top)
    )
    return int(total), [(str(endpoint), int(count)) for endpoint, count in rows.all()]


async def disabled_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(
        (
            await session.execute(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.status == EndpointStatus.DISABLED.value)
                .order_by(WebhookEndpoint.updated_at.desc())
            )
        ).scalars()
    )


async def reseal_secrets(session: AsyncSession, settings: Settings) -> int:
    """Seal every endpoint's secrets again under the current server secret (after it was
    rotated); their values do not change. How many endpoints it sealed again."""
    keys = secret_keys(settings)
    resealed = 0
    for endpoint in (await session.execute(select(WebhookEndpoint))).scalars():
        stale = [
            field
            for field in ("secret_sealed", "previous_secret_sealed")
            if getattr(endpoint, field)
            and not signing.sealed_under_current(getattr(endpoint, field), keys)
        ]
        for field in stale:
            secret = signing.open_secret(getattr(endpoint, field), keys)
            setattr(endpoint, field, signing.seal_secret(secret, keys[0]))
        resealed += bool(stale)
    return resealed
