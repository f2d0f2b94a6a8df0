"""Claims of deliveries: fair over endpoints, capped per endpoint, fenced by their token."""

from __future__ import annotations

from datetime import timedelta

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.webhook import transitions
from tests.conftest import AppFactory
from tests.webhook.conftest import Owner, Receiver, deliveries, emit, register

LEASE = timedelta(seconds=30)


async def test_claims_take_turns_over_endpoints_and_stop_at_each_ones_cap(
    client_for: AppFactory,
    database: Database,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    async with client_for(webhook_settings) as client:
        busy = await register(client, owner, receiver.url("/busy"), event_types=["busy.*"])
        quiet = await register(client, owner, receiver.url("/quiet"), event_types=["quiet.*"])
    for _ in range(6):
        await emit(database, owner.tenant.id, "busy.Happened")
    await emit(database, owner.tenant.id, "quiet.Happened")
    async with database.session(cross_tenant="test") as session:
        first = await transitions.claim(session, limit=2, lease=LEASE, per_endpoint=3)
    # The quiet endpoint's one delivery goes in the first claim, beside the busy one's oldest.
    assert sorted(c.endpoint_id for c in first) == sorted([busy["id"], quiet["id"]])
    async with database.session(cross_tenant="test") as session:
        more = await transitions.claim(session, limit=10, lease=LEASE, per_endpoint=3)
    # Three of the busy endpoint's in flight at most: one already, two more now.
    assert [c.endpoint_id for c in more] == [busy["id"], busy["id"]]


async def test_an_outcome_after_the_lease_was_taken_over_changes_nothing(
    client_for: AppFactory,
    database: Database,
    webhook_settings: Settings,
    owner: Owner,
    receiver: Receiver,
) -> None:
    async with client_for(webhook_settings) as client:
        await register(client, owner, receiver.url())
    await emit(database, owner.tenant.id)
    async with database.session(cross_tenant="test") as session:
        (stalled,) = await transitions.claim(session, limit=1, lease=LEASE, per_endpoint=10)
    clock.advance(LEASE + timedelta(seconds=1))
    async with database.session(cross_tenant="test") as session:
        assert await transitions.reap(session) == 1
        (taken_over,) = await transitions.claim(session, limit=1, lease=LEASE, per_endpoint=10)
    assert taken_over.id == stalled.id and taken_over.token != stalled.token
    async with database.session(cross_tenant="test") as session:
        late = transitions.Finished(stalled, succeeded=False, retry_at=None)
        await transitions.finish(session, [late])
    (delivery,) = await deliveries(database)
    assert (delivery.status, delivery.claim_token, delivery.attempts) == (
        "delivering",
        taken_over.token,
        0,
    )
    async with database.session(cross_tenant="test") as session:
        await transitions.finish(session, [transitions.Finished(taken_over, True, None)])
    (delivery,) = await deliveries(database)
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
