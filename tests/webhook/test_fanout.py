"""Events become messages in the transaction that writes them, for the endpoints that
subscribe; a crash of the worker mid-delivery loses none of them."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from tenantry.event import service as events
from tenantry.kit.clock import utcnow
from tenantry.models import Event, WebhookDelivery, WebhookMessage
from tenantry.webhook.fanout import MAX_PAYLOAD_BYTES, body_of, matches
from tests.fixtures.factories import create_tenant
from tests.fixtures.workers import WorkerProcess, wait_for
from tests.webhook.conftest import Call, Hooks, count, deliveries, emit, register


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        ([], "anything.AtAll", True),
        (["key.Created"], "key.Created", True),
        (["key.Created"], "key.Revoked", False),
        (["activation.*"], "activation.InvitationCreated", True),
        (["activation.*"], "activations.Other", False),
        (["job.*", "key.Revoked"], "key.Revoked", True),
    ],
)
def test_event_type_filters(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


def test_a_body_past_256_kib_goes_out_thin() -> None:
    event = Event(
        id="evt_big",
        type="job.Submitted",
        tenant_id="ten_1",
        occurred_at=utcnow(),
        data={"payload": "x" * MAX_PAYLOAD_BYTES},
    )
    body = body_of(event)
    assert len(body.encode()) < 1024
    assert json.loads(body)["data"] == {
        "event_id": "evt_big",
        "tenant_id": "ten_1",
        "truncated": True,
    }


async def test_each_event_goes_to_the_enabled_endpoints_that_subscribe(
    hooks: Hooks,
) -> None:
    everything = await hooks.endpoint("/all")
    keys = await hooks.endpoint("/keys", event_types=["key.*"])
    await hooks.endpoint("/off", enabled=False)
    other = await create_tenant(hooks.database)
    await hooks.emit("key.Created")
    await hooks.emit("job.Submitted")
    await emit(hooks.database, other.id, "key.Created")
    await emit(hooks.database, None, "platform.Thing")
    assert await count(hooks.database, WebhookMessage) == 2
    sent = {(d.endpoint_id, d.message_id) for d in await deliveries(hooks.database)}
    async with hooks.database.session() as session:
        by_type = {
            m.event_type: m.id for m in (await session.execute(select(WebhookMessage))).scalars()
        }
    assert sent == {
        (everything["id"], by_type["key.Created"]),
        (everything["id"], by_type["job.Submitted"]),
        (keys["id"], by_type["key.Created"]),
    }


async def test_an_event_rolled_back_leaves_no_message(
    hooks: Hooks,
) -> None:
    await hooks.endpoint()
    with pytest.raises(RuntimeError):
        async with hooks.database.session() as session:
            events.record(session, "key.Created", tenant_id=hooks.owner.tenant.id)
            await session.flush()  # the message is written with the event…
            written = await session.execute(select(func.count()).select_from(WebhookMessage))
            assert written.scalar_one() == 1
            raise RuntimeError("the change fails after its event was written")
    # …and rolled back with it.
    assert await count(hooks.database, Event) == 0
    assert await count(hooks.database, WebhookMessage) == 0


async def test_an_event_written_by_a_request_fans_out_under_its_tenant_scope(
    hooks: Hooks,
) -> None:
    """On PostgreSQL the request's session sees only its tenant's rows (row-level security):
    the endpoints it fans out to are found under that same scope."""
    async with hooks.client_for(hooks.settings) as client:
        await register(client, hooks.owner, hooks.receiver.url(), event_types=["key.Created"])
        created = await client.post(
            f"/v1/tenants/{hooks.owner.tenant.id}/keys",
            json={"name": "ci", "scopes": ["jobs:read"]},
            headers=hooks.owner.headers,
        )
        assert created.status_code == 201
    async with hooks.database.session() as session:
        (message,) = (await session.execute(select(WebhookMessage))).scalars()
    assert message.event_type == "key.Created"
    assert created.json()["secret"] not in message.payload


async def test_a_worker_killed_mid_delivery_loses_nothing(
    hooks: Hooks,
    worker_process: Callable[..., WorkerProcess],
) -> None:
    release = threading.Event()
    first_seen: set[str] = set()

    def reply(call: Call) -> tuple[int, dict[str, str], bytes]:
        if call.message_id not in first_seen:  # the first attempt hangs: the worker dies in it
            first_seen.add(call.message_id)
            release.wait(20)
        return 200, {}, b""

    hooks.receiver.reply = reply
    await hooks.endpoint()
    sent = [await hooks.emit(n=i) for i in range(3)]
    environment = {
        "TENANTRY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "TENANTRY_WEBHOOK_LEASE": "2s",
    }
    doomed = worker_process("--queues", "webhooks", **environment)
    try:

        async def all_in_flight() -> bool:
            return len(first_seen) == 3

        await wait_for(all_in_flight)
        doomed.signal(signal.SIGKILL)
        doomed.process.wait(timeout=10)
        assert all(d.status == "delivering" for d in await deliveries(hooks.database))
        worker_process("--queues", "webhooks", **environment)

        async def delivered() -> bool:
            succeeded = WebhookDelivery.status == "succeeded"
            return await count(hooks.database, WebhookDelivery, succeeded) == 3

        await wait_for(delivered)
    finally:
        release.set()
    answered = [call for call in hooks.receiver.calls if call.message_id in first_seen]
    assert {call.document["data"]["event_id"] for call in answered} == set(sent)
    assert len(hooks.receiver.ids()) == 3  # a receiver deduplicating by webhook-id sees each once
