"""From events to webhook messages, in the transaction that writes the event.

`tenantry.event.service.record` marks each tenant event; when the session flushes,
this module writes one message per event that at least one enabled endpoint of the
tenant subscribes to, and one pending delivery per such endpoint. Both land in
the same flush as the event: an event exists if and only if its messages do, and a
crash can lose neither one without the other. After the commit this process's
dispatcher is woken; others hear it through PostgreSQL's NOTIFY or their poll.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.kit.ids import new_id
from tenantry.models import (
    DeliveryStatus,
    EndpointStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from tenantry.worker.queue import NOTIFY_CHANNEL

MAX_PAYLOAD_BYTES = 256 * 1024
TOPIC = "webhooks"  # Database.publish topic: a commit wrote deliveries
# On the workers' NOTIFY channel: one LISTEN connection per worker process wakes both.
NOTIFY_PAYLOAD = "webhooks"
_MARKED = "tenantry.webhook_events"


def mark(session: Any, event: Event) -> None:
    """Have the session's next flush fan `event` out (a tenant's events only)."""
    if event.tenant_id is not None:
        session.info.setdefault(_MARKED, []).append(event)


def matches(event_types: Sequence[str], event_type: str) -> bool:
    """An endpoint's filter: empty takes every type; `prefix.*` every type under prefix."""
    if not event_types:
        return True
    return any(
        event_type.startswith(pattern[:-1]) if pattern.endswith(".*") else event_type == pattern
        for pattern in event_types
    )


def body_of(event: Event) -> str:
    """`{"type", "timestamp", "data"}`; `data` is the event's, with its id and tenant. A body
    over 256 KiB goes out thin: the ids and `"truncated": true`, the rest is at
    `GET /v1/tenants/{tenant_id}/events`."""
    ids = {"event_id": event.id, "tenant_id": event.tenant_id}
    document = {
        "type": event.type,
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": {**event.data, **ids},
    }
    body = json.dumps(document, separators=(",", ":"), sort_keys=True)
    if len(body.encode()) > MAX_PAYLOAD_BYTES:
        document["data"] = {**ids, "truncated": True}
        body = json.dumps(document, separators=(",", ":"), sort_keys=True)
    return body


@orm_event.listens_for(Session, "before_flush")
def _fan_out(session: Session, _context: Any, _instances: Any) -> None:
    events: list[Event] = session.info.pop(_MARKED, [])
    if not events:
        return
    with session.no_autoflush:
        endpoints = (
            session.execute(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.tenant_id.in_({e.tenant_id for e in events}),
                    WebhookEndpoint.status == EndpointStatus.ENABLED.value,
                )
            )
            .scalars()
            .all()
        )
    if not endpoints:
        return
    now = utcnow()
    wrote = False
    for event in events:
        subscribed = [
            endpoint
            for endpoint in endpoints
            if endpoint.tenant_id == event.tenant_id and matches(endpoint.event_types, event.type)
        ]
        if not subscribed:
            continue
        message = WebhookMessage(
            id=new_id("msg"),
            tenant_id=event.tenant_id,
            event_id=event.id,
            event_type=event.type,
            payload=body_of(event),
            created_at=now,
        )
        session.add(message)
        session.add_all(_delivery(message, endpoint.id, now) for endpoint in subscribed)
        wrote = True
    if wrote:
        _wake_dispatchers(session)


def _delivery(message: WebhookMessage, endpoint_id: str, now: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=new_id("whd"),
        tenant_id=message.tenant_id,
        message=message,
        endpoint_id=endpoint_id,
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        trigger="scheduled",
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def _wake_dispatchers(session: Session) -> None:
    database = Database.of(session)
    if database.is_postgres:
        session.execute(select(func.pg_notify(NOTIFY_CHANNEL, NOTIFY_PAYLOAD)))
    database.publish(session, TOPIC, None)
