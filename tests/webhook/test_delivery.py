"""Deliveries to real receivers: signed per Standard Webhooks, retried on the schedule,
never lost, never blocked behind another endpoint."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import WebhookDelivery, WebhookMessage
from tests.fixtures.workers import wait_for
from tests.webhook.conftest import (
    Owner,
    Receiver,
    attempts,
    count,
    deliveries,
    dispatching,
    emit,
    register,
)


async def test_a_tenant_event_arrives_signed_and_verifies_with_the_library(
    client_for: object,
    database: Database,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    async with client_for(webhook_settings) as client:  # type: ignore[operator]
        endpoint = await register(client, owner, receiver.url())
    receiver.secrets = [endpoint["secret"]]
    event_id = await emit(database, owner.tenant.id, "test.Happened", n=1)
    async with dispatching(webhook_settings):
        await wait_for(lambda: _arrived(receiver, 1))
    (call,) = receiver.calls
    assert call.verified_with == [endpoint["secret"]]
    assert call.headers["content-type"] == "application/json"
    assert call.message_id.startswith("msg_")
    document = call.document
    assert document["type"] == "test.Happened"
    assert document["data"]["event_id"] == event_id and document["data"]["n"] == 1
    (attempt,) = await attempts(database)
    assert (attempt.status, attempt.response_status, attempt.trigger) == (
        "succeeded",
        200,
        "scheduled",
    )
    assert await count(database, WebhookMessage) == 1


async def _arrived(receiver: Receiver, n: int) -> bool:
    return len(receiver.calls) >= n
