"""The funnel against a history the test writes: window edges, canary traffic that must not
count, the 72-hour acceptance edge, provisioning percentiles; the API and the CLI agree."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.event import counts
from tenantry.event import service as events
from tenantry.kit.clock import clock, utcnow
from tenantry.kit.ids import new_id
from tenantry.models import Event, EventCount, Invitation, InvitationStatus, SignupStatus
from tests.conftest import AppFactory
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_member, create_signup, create_tenant, operator_headers
from tests.fixtures.signup import from_address, signup_body

NOW = utcnow().replace(minute=0, second=0, microsecond=0)
SINCE = NOW - timedelta(hours=40)
UNTIL = SINCE + timedelta(hours=30)
CANARY = "probe@canary.tenantry.invalid"
STARTED = "activation.SignupStarted"

# (type, hours after SINCE, how many) of real traffic in the window
REAL = [
    ("activation.SignupStarted", 0, 6),
    ("activation.SignupStarted", 5, 4),
    ("activation.EmailVerified", 1, 8),
    ("activation.TenantProvisioned", 1, 5),
    ("activation.TenantProvisioned", 6, 1),
    ("activation.InvitationCreated", 2, 4),
    ("activation.InvitationAccepted", 3, 3),
    ("activation.ActivationCompleted", 3, 3),
]


def operator(settings: Settings, role: str = "support") -> dict[str, str]:
    return operator_headers(settings, role, subject="ops_funnel")


def record_at(session: AsyncSession, type_: str, at: datetime, *, synthetic: bool = False) -> None:
    """An event as the service records it, with the clock moved to `at`."""
    clock.reset()
    clock.advance(at - utcnow())
    events.record(session, type_, synthetic=synthetic)
    clock.reset()


async def write_history(database: Database, settings: Settings) -> None:
    async with database.session() as session:
        for type_, hours, n in REAL:
            for _ in range(n):
                record_at(session, type_, SINCE + timedelta(hours=hours, minutes=10))
        record_at(session, STARTED, SINCE - timedelta(minutes=1))  # before the window
        record_at(session, STARTED, UNTIL)  # the window is half-open
        for type_, _, _ in REAL:  # the canary's
            record_at(session, type_, SINCE + timedelta(hours=2), synthetic=True)
    for seconds in range(1, 11):  # provisioned 1 s … 10 s after verification
        done = SINCE + timedelta(hours=2, minutes=seconds)
        await create_signup(
            database,
            status=SignupStatus.PROVISIONED,
            verified_at=done - timedelta(seconds=seconds),
            provisioned_at=done,
        )
    await create_signup(  # a canary's slow run, and a run that ended before the window
        database,
        status=SignupStatus.PROVISIONED,
        verified_at=SINCE,
        provisioned_at=SINCE + timedelta(seconds=100),
        synthetic=True,
    )
    await create_signup(
        database,
        status=SignupStatus.PROVISIONED,
        verified_at=SINCE - timedelta(hours=1),
        provisioned_at=SINCE - timedelta(minutes=1),
    )
    await write_invitations(database)


async def write_invitations(database: Database) -> None:
    """Sent in the window: accepted 1 min inside 72 h, 1 min past it, pending, revoked; and a
    canary's, accepted at once, which does not count."""
    tenant = await create_tenant(database)
    owner = await create_member(database, tenant.id, "owner")
    sent = SINCE + timedelta(hours=1)
    ends = [
        (InvitationStatus.ACCEPTED, timedelta(hours=72) - timedelta(minutes=1), None),
        (InvitationStatus.ACCEPTED, timedelta(hours=72) + timedelta(minutes=1), None),
        (InvitationStatus.PENDING, None, None),
        (InvitationStatus.REVOKED, timedelta(hours=1), None),
        (InvitationStatus.ACCEPTED, timedelta(minutes=1), CANARY),
    ]
    async with database.session() as session:
        for n, (status, after, email) in enumerate(ends):
            session.add(
                Invitation(
                    id=new_id("inv"),
                    tenant_id=tenant.id,
                    email=email or f"invitee{n}@example.com",
                    role="member",
                    status=status.value,
                    token_hash=new_id("tok"),
                    invited_by=owner.id,
                    created_at=sent,
                    expires_at=sent + timedelta(hours=72),
                    ended_at=sent + after if after else None,
                )
            )


@pytest.fixture
async def history(database: Database, settings: Settings) -> None:
    await write_history(database, settings)


@pytest.mark.usefixtures("history")
class TestReport:
    async def test_counts_conversion_acceptance_and_percentiles(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        window = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
        response = await client.get("/v1/admin/funnel", params=window, headers=operator(settings))
        assert response.status_code == 200, response.text
        report = response.json()
        assert [(s["type"], s["count"], s["conversion"]) for s in report["stages"]] == [
            ("activation.SignupStarted", 10, 1.0),
            ("activation.EmailVerified", 8, 0.8),
            ("activation.TenantProvisioned", 6, 0.6),
            ("activation.InvitationCreated", 4, 0.4),
            ("activation.InvitationAccepted", 3, 0.3),
            ("activation.ActivationCompleted", 3, 0.3),
        ]
        assert report["invite_acceptance_72h"] == 0.25
        assert report["provisioning_ms"] == {"p50": 5000.0, "p95": 10000.0}

    async def test_folding_the_rollup_changes_no_figure(
        self, client: httpx.AsyncClient, settings: Settings, database: Database
    ) -> None:
        window = {"since": (SINCE + timedelta(minutes=30)).isoformat(), "until": UNTIL.isoformat()}

        async def report() -> dict[str, Any]:
            response = await client.get(
                "/v1/admin/funnel", params=window, headers=operator(settings)
            )
            return dict(response.json())

        async def rows() -> int:
            async with database.session() as session:
                query = select(func.count()).select_from(EventCount)
                return int((await session.execute(query)).scalar_one())

        before, unfolded = await report(), await rows()
        async with database.session() as session:
            await counts.fold(session)
        assert await report() == before
        assert await rows() < unfolded
        # a window starting mid-hour counts that hour's events from the events themselves
        assert before["stages"][0]["count"] == 4

    async def test_series_by_hour_and_by_day(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        window = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
        hourly = (
            await client.get("/v1/admin/funnel", params=window, headers=operator(settings))
        ).json()["series"]
        assert len(hourly) == 30
        busy = {
            datetime.fromisoformat(row["start"]): (
                row["signups_started"],
                row["tenants_provisioned"],
            )
            for row in hourly
            if row["signups_started"] or row["tenants_provisioned"]
        }
        hour = lambda n: SINCE + timedelta(hours=n)  # noqa: E731
        assert busy == {hour(0): (6, 0), hour(1): (0, 5), hour(5): (4, 0), hour(6): (0, 1)}
        daily = (
            await client.get(
                "/v1/admin/funnel", params={**window, "by": "day"}, headers=operator(settings)
            )
        ).json()["series"]
        assert sum(row["signups_started"] for row in daily) == 10
        assert all(datetime.fromisoformat(row["start"]).hour == 0 for row in daily)

    async def test_the_cli_reports_what_the_api_does(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        code, output = await run_tenantry(settings, "funnel", "--since", "48h", "--json")
        assert code == 0, output
        printed = json.loads(output)
        window = {"since": printed["since"], "until": printed["until"]}
        served = (
            await client.get("/v1/admin/funnel", params=window, headers=operator(settings))
        ).json()
        assert printed["stages"] == served["stages"]
        # the 48 h reach back past SINCE: the event a minute before it, and the one at UNTIL
        assert printed["stages"][0]["count"] == 12
        code, table = await run_tenantry(settings, "funnel", "--since", "48h")
        assert code == 0 and "activation.EmailVerified" in table
        assert "p50 6000 ms, p95 3540000 ms" in table  # and the run that ended before SINCE


class TestRefusals:
    async def test_an_empty_or_overlong_window_is_a_validation_error(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        for window in (
            {"since": UNTIL.isoformat(), "until": SINCE.isoformat()},
            {"since": (UNTIL - timedelta(days=400)).isoformat(), "until": UNTIL.isoformat()},
            {"since": "2026-11-01T00:00:00"},  # no offset: which zone is meant?
        ):
            response = await client.get(
                "/v1/admin/funnel", params=window, headers=operator(settings)
            )
            assert response.status_code == 400, response.text
            assert response.json()["code"] == "VALIDATION"

    async def test_tenants_do_not_see_it(
        self, client: httpx.AsyncClient, settings: Settings, database: Database
    ) -> None:
        tenant = await create_tenant(database)
        user = await create_member(database, tenant.id, "owner")
        token, _ = build_token_issuer(settings).mint(
            subject=user.id,
            audience=Audience.TENANT,
            ttl=timedelta(minutes=5),
            roles=["owner"],
            tenant_id=tenant.id,
        )
        response = await client.get(
            "/v1/admin/funnel", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 403


async def test_a_canary_signup_is_counted_nowhere(
    client_for: AppFactory, signup_settings: Settings, database: Database
) -> None:
    """Through the API: a signup at the canary domain writes its events, marked synthetic."""
    async with client_for(signup_settings) as api:
        for body in (signup_body(), signup_body(slug="probe", email=CANARY)):
            assert (
                await api.post("/v1/signup", json=body, headers=from_address())
            ).status_code == 201
        report = (await api.get("/v1/admin/funnel", headers=operator(signup_settings))).json()
    assert report["stages"][0] == {
        "type": "activation.SignupStarted",
        "count": 1,
        "conversion": 1.0,
    }
    async with database.session() as session:
        marks = (await session.execute(select(Event.synthetic).order_by(Event.synthetic))).all()
    assert [mark for (mark,) in marks] == [False, True]
