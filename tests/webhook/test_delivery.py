"""Deliveries to real receivers: signed per Standard Webhooks, retried on the schedule,
never lost, never blocked behind another endpoint."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tenantry.db import Database
from tenantry.flag import service as flags
from tenantry.kit.clock import clock, utcnow
from tenantry.models import Event, MailMessage, WebhookDelivery, WebhookEndpoint, WebhookMessage
from tenantry.tenant.service import set_suspended
from tenantry.webhook import transitions
from tenantry.webhook.schedule import DELAYS, MAX_ATTEMPTS
from tests.fixtures.workers import wait_for
from tests.webhook.conftest import (
    Call,
    Hooks,
    Owner,
    Receiver,
    attempts,
    count,
    deliveries,
    register,
)


async def _calls(receiver: Receiver, n: int) -> None:
    async def arrived() -> bool:
        return len(receiver.calls) >= n

    await wait_for(arrived)


async def _attempted(database: Database, n: int) -> None:
    async def made() -> bool:
        return len(await attempts(database)) >= n

    await wait_for(made)


async def _endpoint(database: Database, endpoint_id: str) -> WebhookEndpoint:
    async with database.session() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        return endpoint


async def test_a_tenant_event_arrives_signed_and_verifies_with_the_library(
    hooks: Hooks,
) -> None:
    endpoint = await hooks.endpoint()
    hooks.receiver.secrets = [endpoint["secret"]]
    event_id = await hooks.emit("test.Happened", n=1)
    async with hooks.dispatching():
        await hooks.calls(1)
        await hooks.attempted(1)
    (call,) = hooks.receiver.calls
    assert call.verified_with == [endpoint["secret"]]
    assert call.headers["content-type"] == "application/json"
    assert call.message_id.startswith("msg_")
    document = call.document
    assert set(document) == {"type", "timestamp", "data"}
    assert document["type"] == "test.Happened"
    assert document["data"]["event_id"] == event_id and document["data"]["n"] == 1
    (attempt,) = await attempts(hooks.database)
    assert (attempt.status, attempt.response_status, attempt.trigger, attempt.attempt) == (
        "succeeded",
        200,
        "scheduled",
        1,
    )
    assert attempt.response_excerpt == "ok"
    assert await count(hooks.database, WebhookMessage) == 1


async def test_during_a_rotation_both_secrets_sign_and_after_it_only_the_new(
    hooks: Hooks,
) -> None:
    async with hooks.client_for(hooks.settings) as client:
        endpoint = await register(client, hooks.owner, hooks.receiver.url())
        rotated = await client.post(
            f"{hooks.owner.base}/{endpoint['id']}/rotate-secret",
            json={"grace": "1h"},
            headers=hooks.owner.headers,
        )
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    hooks.receiver.secrets = [endpoint["secret"], new_secret]
    await hooks.emit()
    async with hooks.dispatching():
        await hooks.calls(1)
        clock.advance(timedelta(hours=1, seconds=1))
        await hooks.emit()
        await hooks.calls(2)
    during, after = hooks.receiver.calls
    # A receiver still holding either secret verifies the request made during the grace.
    assert during.verified_with == [endpoint["secret"], new_secret]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_with == [new_secret]


async def test_failures_follow_the_schedule_then_the_delivery_fails(
    hooks: Hooks,
) -> None:
    hooks.receiver.reply = lambda call: (500, {}, b"broken")
    await hooks.endpoint()
    await hooks.emit()
    async with hooks.dispatching():
        for attempt in range(1, MAX_ATTEMPTS + 1):
            await hooks.attempted(attempt)
            made = (await attempts(hooks.database))[-1]
            assert made.status == "failed" and made.response_status == 500
            if attempt == MAX_ATTEMPTS:
                assert made.next_attempt_at is None
                break
            waited = (made.next_attempt_at - made.created_at).total_seconds()  # type: ignore[operator]
            scheduled = DELAYS[attempt - 1].total_seconds()
            assert 0.8 * scheduled <= waited <= 1.2 * scheduled
            clock.advance(timedelta(seconds=waited + 1))
    (delivery,) = await deliveries(hooks.database)
    assert (delivery.status, delivery.attempts) == ("failed", MAX_ATTEMPTS)
    assert len(hooks.receiver.ids()) == 1  # every attempt carried the same webhook-id


async def test_retry_after_is_heard_within_once_and_twice_the_scheduled_delay(
    hooks: Hooks,
) -> None:
    answers = iter([(429, {"Retry-After": "8"}), (503, {"Retry-After": "3600"})])

    def reply(call: Call) -> tuple[int, dict[str, str], bytes]:
        status, headers = next(answers, (200, {}))
        return status, headers, b""

    hooks.receiver.reply = reply
    await hooks.endpoint()
    await hooks.emit()
    async with hooks.dispatching():
        await hooks.attempted(1)
        first = (await attempts(hooks.database))[0]
        asked = (first.next_attempt_at - first.created_at).total_seconds()  # type: ignore[operator]
        assert asked == 8  # asked for 8 s, within [5 s, 10 s]: exactly as asked
        clock.advance(timedelta(seconds=9))
        await hooks.attempted(2)
        second = (await attempts(hooks.database))[1]
        clamped = second.next_attempt_at - second.created_at  # type: ignore[operator]
        assert clamped == 2 * DELAYS[1]  # asked for an hour, after 5 min: held to 10 min
        clock.advance(clamped + timedelta(seconds=1))
        await hooks.attempted(3)
    assert [a.status for a in await attempts(hooks.database)] == ["failed", "failed", "succeeded"]


async def test_410_gone_disables_the_endpoint_at_once_and_tells_the_owners(
    hooks: Hooks,
) -> None:
    hooks.receiver.reply = lambda call: (410, {}, b"")
    endpoint = await hooks.endpoint()
    await hooks.emit()
    async with hooks.dispatching():
        await hooks.attempted(1)
    disabled = await _endpoint(hooks.database, endpoint["id"])
    assert (disabled.status, disabled.disabled_reason) == ("disabled", "gone")
    (delivery,) = await deliveries(hooks.database)
    assert delivery.status == "failed"
    await _disabled_event_and_mail(hooks.database, hooks.owner, endpoint["id"], "gone")


async def _disabled_event_and_mail(
    database: Database, owner: Owner, endpoint_id: str, reason: str
) -> None:
    async with database.session() as session:
        (event,) = (
            await session.execute(select(Event).where(Event.type == "webhook.EndpointDisabled"))
        ).scalars()
        mails = list(
            (
                await session.execute(
                    select(MailMessage).where(MailMessage.template == "webhook_disabled")
                )
            ).scalars()
        )
    assert event.tenant_id == owner.tenant.id and event.data["endpoint_id"] == endpoint_id
    assert event.data["reason"].startswith(reason)
    assert len(mails) == 1 and mails[0].tenant_id == owner.tenant.id


async def test_five_days_without_a_success_disable_the_endpoint_and_mail_the_owners(
    hooks: Hooks,
) -> None:
    hooks.receiver.reply = lambda call: (503, {}, b"")
    endpoint = await hooks.endpoint()
    await hooks.emit()
    async with hooks.dispatching():
        await hooks.attempted(1)
        clock.advance(timedelta(days=4, hours=23))
        await hooks.emit()
        await hooks.attempted(3)  # the new message, and the first one's retry
        assert (await _endpoint(hooks.database, endpoint["id"])).enabled
        clock.advance(timedelta(hours=1))
        await hooks.emit()
        await hooks.attempted(4)

        async def off() -> bool:
            return not (await _endpoint(hooks.database, endpoint["id"])).enabled

        await wait_for(off)
    disabled = await _endpoint(hooks.database, endpoint["id"])
    assert disabled.disabled_reason == "failing: no success in 5 days"
    await _disabled_event_and_mail(hooks.database, hooks.owner, endpoint["id"], "failing")
    # Its messages wait for it: none is dropped by the disabling.
    assert await count(hooks.database, WebhookDelivery, WebhookDelivery.status == "pending") >= 1


async def test_a_receiver_down_for_an_hour_gets_every_event_once_it_is_back(
    hooks: Hooks,
) -> None:
    up = threading.Event()
    hooks.receiver.reply = lambda call: (200, {}, b"") if up.is_set() else (503, {}, b"down")
    await hooks.endpoint()
    sent = [await hooks.emit(n=i) for i in range(5)]
    async with hooks.dispatching():
        await hooks.attempted(5)
        for _ in range(12):  # an hour, five minutes at a time
            clock.advance(timedelta(minutes=5))
            await _settled(hooks.database)
        up.set()
        clock.advance(timedelta(hours=3))

        async def all_delivered() -> bool:
            return (
                await count(hooks.database, WebhookDelivery, WebhookDelivery.status == "succeeded")
                == 5
            )

        await wait_for(all_delivered)
    succeeded = [call for call in hooks.receiver.calls if up.is_set() and call.document]
    delivered = {call.document["data"]["event_id"] for call in succeeded}
    assert delivered == set(sent)
    assert len(hooks.receiver.ids()) == 5  # deduplicated by webhook-id: one id per event


async def _settled(database: Database) -> None:
    """Nothing due is left undelivered (every due delivery was attempted)."""

    async def quiet() -> bool:
        due = WebhookDelivery.status.in_(["pending", "delivering"])
        now = utcnow()
        return (
            await count(
                database,
                WebhookDelivery,
                due,
                (WebhookDelivery.next_attempt_at <= now) | (WebhookDelivery.status == "delivering"),
            )
            == 0
        )

    await wait_for(quiet)


async def test_a_slow_endpoint_does_not_delay_a_fast_one(
    hooks: Hooks,
) -> None:
    released = threading.Event()
    slow_started: list[str] = []

    def reply(call: Call) -> tuple[int, dict[str, str], bytes]:
        if call.path == "/slow":
            slow_started.append(call.message_id)
            released.wait(10)  # answers after 10 s, unless the test is done sooner
        return 200, {}, b""

    hooks.receiver.reply = reply
    await hooks.endpoint("/slow")
    await hooks.endpoint("/fast")
    for i in range(30):
        await hooks.emit(n=i)
    try:
        async with hooks.dispatching():

            async def fast_done() -> bool:
                return sum(call.path == "/fast" for call in hooks.receiver.calls) == 30

            await wait_for(fast_done)
            # Every fast delivery arrived while the slow endpoint had not answered once.
            assert not any(call.path == "/slow" for call in hooks.receiver.calls)
            # And the slow one holds its own cap of slots, no more.
            cap = hooks.settings.webhook_max_in_flight_per_endpoint

            async def slow_at_cap() -> bool:
                return len(slow_started) >= cap

            await wait_for(slow_at_cap)
            assert len(slow_started) == cap
            released.set()
    finally:
        released.set()


async def test_the_delivery_flag_holds_deliveries_without_losing_them(
    hooks: Hooks,
) -> None:
    await hooks.endpoint()
    async with hooks.database.session() as session:
        await flags.set_flag(
            session, "webhooks.delivery", False, reason="receiver flood", by="test"
        )
    await hooks.emit()
    async with hooks.dispatching() as dispatcher:
        # It reads the switches before its first claim: held from the start, it claims nothing.
        await wait_for(_held(dispatcher))
        assert hooks.receiver.calls == []
        (held,) = await deliveries(hooks.database)
        assert held.status == "pending"
        async with hooks.database.session() as session:
            await flags.set_flag(session, "webhooks.delivery", True, reason="over", by="test")
        await hooks.calls(1)


def _held(dispatcher: Any) -> Any:
    async def held() -> bool:
        return bool(dispatcher.held)

    return held


async def test_deliveries_to_one_host_reuse_a_kept_alive_connection(
    hooks: Hooks,
) -> None:
    await hooks.endpoint()
    async with hooks.dispatching():
        for n in range(1, 6):
            await hooks.emit(n=n)
            await hooks.attempted(n)  # answered and written: the connection is free
    assert len(hooks.receiver.calls) == 5 and len(hooks.receiver.connections) == 1


async def test_an_endpoint_deleted_mid_delivery_does_not_stall_the_others(
    hooks: Hooks,
) -> None:
    answering = threading.Event()
    released = threading.Event()

    def reply(call: Call) -> tuple[int, dict[str, str], bytes]:
        if call.path == "/doomed":
            answering.set()
            released.wait(10)
        return 200, {}, b""

    hooks.receiver.reply = reply
    async with hooks.client_for(hooks.settings) as client:
        doomed = await register(client, hooks.owner, hooks.receiver.url("/doomed"))
        await register(client, hooks.owner, hooks.receiver.url("/other"))
        await hooks.emit()
        try:
            async with hooks.dispatching():
                await wait_for(_set(answering))
                deleted = await client.delete(
                    f"{hooks.owner.base}/{doomed['id']}", headers=hooks.owner.headers
                )
                assert deleted.status_code == 204
                released.set()  # its answer now has no delivery to go to
                await hooks.emit()

                async def others_delivered() -> bool:
                    return sum(call.path == "/other" for call in hooks.receiver.calls) == 2

                await wait_for(others_delivered)
                await hooks.attempted(2)
        finally:
            released.set()
    assert {d.status for d in await deliveries(hooks.database)} == {"succeeded"}
    assert {a.endpoint_id for a in await attempts(hooks.database)} == {
        d.endpoint_id for d in await deliveries(hooks.database)
    }


def _set(flag: threading.Event) -> Any:
    async def is_set() -> bool:
        return flag.is_set()

    return is_set


async def test_a_suspended_tenants_deliveries_wait(
    hooks: Hooks,
) -> None:
    await hooks.endpoint()
    await hooks.emit()
    async with hooks.database.session() as session:
        await set_suspended(session, hooks.owner.tenant.id, True, reason="unpaid", by="ops")
    async with hooks.database.session(cross_tenant="test") as session:
        claimed = await transitions.claim(
            session, limit=10, lease=timedelta(seconds=30), per_endpoint=10
        )
    assert claimed == []
    async with hooks.database.session() as session:
        await set_suspended(session, hooks.owner.tenant.id, False, reason="paid", by="ops")
    async with hooks.dispatching():
        await hooks.calls(1)


async def test_an_endpoints_rate_limit_paces_its_deliveries_and_counts_no_attempt(
    hooks: Hooks,
) -> None:
    await hooks.endpoint(rate_limit_per_s=1)
    for n in range(3):
        await hooks.emit(n=n)
    async with hooks.dispatching():
        await hooks.attempted(3)
    # One a second at most: three deliveries arrive in three different seconds, and the
    # ones held back were put back in line, not counted as attempts.
    assert len({int(call.at) for call in hooks.receiver.calls}) == 3
    assert [a.attempt for a in await attempts(hooks.database)] == [1, 1, 1]
