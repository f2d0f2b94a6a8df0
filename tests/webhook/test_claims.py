"""Claims of deliveries: fair over endpoints, capped per endpoint, fenced by their token."""

from __future__ import annotations

from datetime import timedelta

from tenantry.kit.clock import clock
from tenantry.webhook import transitions
from tests.webhook.conftest import Hooks, deliveries

LEASE = timedelta(seconds=30)


async def test_claims_take_turns_over_endpoints_and_stop_at_each_ones_cap(
    hooks: Hooks,
) -> None:
    busy = await hooks.endpoint("/busy", event_types=["busy.*"])
    quiet = await hooks.endpoint("/quiet", event_types=["quiet.*"])
    for _ in range(6):
        await hooks.emit("busy.Happened")
    await hooks.emit("quiet.Happened")
    async with hooks.database.session(cross_tenant="test") as session:
        first = await transitions.claim(session, limit=2, lease=LEASE, per_endpoint=3)
    # The quiet endpoint's one delivery goes in the first claim, beside the busy one's oldest.
    assert sorted(c.endpoint_id for c in first) == sorted([busy["id"], quiet["id"]])
    async with hooks.database.session(cross_tenant="test") as session:
        more = await transitions.claim(session, limit=10, lease=LEASE, per_endpoint=3)
    # Three of the busy endpoint's in flight at most: one already, two more now.
    assert [c.endpoint_id for c in more] == [busy["id"], busy["id"]]


async def test_an_outcome_after_the_lease_was_taken_over_changes_nothing(
    hooks: Hooks,
) -> None:
    await hooks.endpoint()
    await hooks.emit()
    async with hooks.database.session(cross_tenant="test") as session:
        (stalled,) = await transitions.claim(session, limit=1, lease=LEASE, per_endpoint=10)
    clock.advance(LEASE + timedelta(seconds=1))
    async with hooks.database.session(cross_tenant="test") as session:
        assert await transitions.reap(session) == 1
        (taken_over,) = await transitions.claim(session, limit=1, lease=LEASE, per_endpoint=10)
    assert taken_over.id == stalled.id and taken_over.token != stalled.token
    async with hooks.database.session(cross_tenant="test") as session:
        late = transitions.Finished(stalled, succeeded=False, retry_at=None)
        await transitions.finish(session, [late])
    (delivery,) = await deliveries(hooks.database)
    assert (delivery.status, delivery.claim_token, delivery.attempts) == (
        "delivering",
        taken_over.token,
        0,
    )
    async with hooks.database.session(cross_tenant="test") as session:
        await transitions.finish(session, [transitions.Finished(taken_over, True, None)])
    (delivery,) = await deliveries(hooks.database)
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
