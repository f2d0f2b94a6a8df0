"""Re-sending codes, reading sessions, expiry and purge."""

from __future__ import annotations

import email
from datetime import timedelta

import httpx
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import Event, MailMessage, SignupSession, SignupStatus
from tenantry.signup import service
from tests.conftest import LogCapture
from tests.fixtures.signup import from_address, signup_body
from tests.fixtures.workers import running_worker, wait_for
from tests.test_errors import assert_problem


async def start(api: httpx.AsyncClient, **overrides: str) -> str:
    response = await api.post("/v1/signup", json=signup_body(**overrides), headers=from_address())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def mails_to(database: Database, address: str) -> list[MailMessage]:
    async with database.session() as session:
        rows = await session.execute(select(MailMessage).where(MailMessage.to_address == address))
        return list(rows.scalars())


class TestResend:
    async def test_within_the_cooldown_is_429_with_retry_after(
        self, api: httpx.AsyncClient
    ) -> None:
        signup_id = await start(api)
        response = await api.post(f"/v1/signup/{signup_id}/resend", headers=from_address())
        assert_problem(response, 429, "RATE_LIMITED")
        assert 1 <= int(response.headers["Retry-After"]) <= 60

    async def test_after_the_cooldown_a_new_code_replaces_the_old(
        self, api: httpx.AsyncClient, database: Database
    ) -> None:
        signup_id = await start(api)
        async with database.session() as session:
            first_hash = (await session.get(SignupSession, signup_id)).code_hash  # type: ignore[union-attr]
        clock.advance(timedelta(seconds=61))
        response = await api.post(f"/v1/signup/{signup_id}/resend", headers=from_address())
        assert response.status_code == 202 and response.json()["id"] == signup_id
        assert "RateLimit-Policy" in response.headers
        async with database.session() as session:
            signup = await session.get(SignupSession, signup_id)
        assert signup is not None and signup.code_hash != first_hash
        assert (signup.codes_sent, signup.failed_attempts) == (2, 0)
        assert len(await mails_to(database, "ada@acme.example.com")) == 2

    async def test_capped_per_session(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        for _ in range(signup_settings.signup_max_codes - 1):
            clock.advance(timedelta(seconds=61))
            assert (
                await api.post(f"/v1/signup/{signup_id}/resend", headers=from_address())
            ).status_code == 202
        clock.advance(timedelta(seconds=61))
        capped = await api.post(f"/v1/signup/{signup_id}/resend", headers=from_address())
        assert "No more codes" in assert_problem(capped, 429, "RATE_LIMITED")["detail"]  # type: ignore[operator]

    async def test_expired_session_is_410(self, api: httpx.AsyncClient) -> None:
        signup_id = await start(api)
        clock.advance(timedelta(hours=25))
        assert_problem(
            await api.post(f"/v1/signup/{signup_id}/resend", headers=from_address()),
            410,
            "SESSION_EXPIRED",
        )

    async def test_unknown_session_is_404(self, api: httpx.AsyncClient) -> None:
        assert_problem(
            await api.post("/v1/signup/ses_nope/resend", headers=from_address()), 404, "NOT_FOUND"
        )
        assert_problem(await api.get("/v1/signup/ses_nope"), 404, "NOT_FOUND")


class TestCodeNeverLeaks:
    async def test_code_reaches_the_mail_and_nothing_else(
        self,
        api: httpx.AsyncClient,
        database: Database,
        signup_settings: Settings,
        logs: LogCapture,
    ) -> None:
        await start(api)
        async with running_worker(database, signup_settings):

            async def mailed() -> bool:
                return any((signup_settings.data_dir / "mail").glob("*.eml"))

            await wait_for(mailed)
        (path,) = (signup_settings.data_dir / "mail").glob("*.eml")
        message = email.message_from_bytes(path.read_bytes())
        code = message["Subject"].split()[0]
        assert code.isdigit() and len(code) == 6
        assert code not in logs.text
        async with database.session() as session:
            stored = [
                repr(row.__dict__)
                for row in (await session.execute(select(SignupSession))).scalars()
            ]
            stored += [
                repr(row.__dict__) for row in (await session.execute(select(MailMessage))).scalars()
            ]
            stored += [
                repr(row.__dict__) for row in (await session.execute(select(Event))).scalars()
            ]
        assert all(code not in row for row in stored)


class TestExpiryAndPurge:
    async def test_expire_then_purge_after_retention(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        stale = await start(api)
        clock.advance(timedelta(hours=23))
        fresh = await start(api, slug="fresh", email="f@fresh.example.com")
        clock.advance(timedelta(hours=2))
        async with database.session() as session:
            report = await service.expire_and_purge(session, signup_settings, dry_run=True)
        assert (report.expired, report.deleted) == (1, 0)
        async with database.session() as session:
            report = await service.expire_and_purge(session, signup_settings)
        assert (report.expired, report.deleted) == (1, 0)
        assert (await api.get(f"/v1/signup/{stale}")).json()["status"] == "EXPIRED"
        assert (await api.get(f"/v1/signup/{fresh}")).json()[
            "status"
        ] == "PENDING_EMAIL_VERIFICATION"
        async with database.session() as session:
            (event,) = (
                await session.execute(
                    select(Event).where(
                        Event.subject_id == stale, Event.type == "activation.SignupExpired"
                    )
                )
            ).scalars()
        assert event.data["reason"] == "unverified"

        clock.advance(timedelta(days=31))
        async with database.session() as session:
            report = await service.expire_and_purge(session, signup_settings)
        assert (report.expired, report.deleted) == (
            1,
            1,
        )  # the fresh one expires now, the stale one goes
        assert_problem(await api.get(f"/v1/signup/{stale}"), 404, "NOT_FOUND")

    async def test_sessions_stuck_in_flight_expire_after_the_deadline(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        async with database.session() as session:
            signup = await session.get(SignupSession, signup_id)
            assert signup is not None
            signup.status = SignupStatus.PROVISIONING
        clock.advance(timedelta(hours=2))
        async with database.session() as session:
            report = await service.expire_and_purge(session, signup_settings)
        assert report.expired == 1
        assert (await api.get(f"/v1/signup/{signup_id}")).json()["status"] == "EXPIRED"
