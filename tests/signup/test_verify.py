"""POST /v1/signup/{id}/verify: the code rules, concurrency, and provisioning being enqueued."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import Event, Job, SignupSession
from tests.conftest import LogCapture
from tests.fixtures.secrets import seen
from tests.fixtures.signup import code_for, from_address, signup_body
from tests.test_errors import assert_problem

EMAIL = "ada@acme.example.com"


async def start(api: httpx.AsyncClient) -> str:
    response = await api.post("/v1/signup", json=signup_body(), headers=from_address())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def verify(api: httpx.AsyncClient, signup_id: str, code: str) -> httpx.Response:
    return await api.post(
        f"/v1/signup/{signup_id}/verify", json={"code": code}, headers=from_address()
    )


class TestVerified:
    async def test_right_code_verifies_enqueues_provisioning_and_issues_a_token(
        self,
        api: httpx.AsyncClient,
        database: Database,
        signup_settings: Settings,
        logs: LogCapture,
    ) -> None:
        signup_id = await start(api)
        code = await code_for(database, signup_settings, EMAIL)
        response = await verify(api, signup_id, code)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == signup_id and body["status"] == "EMAIL_VERIFIED"
        token = seen(body["continuation_token"])
        assert token.startswith("tnt_ct_")
        async with database.session() as session:
            signup = await session.get(SignupSession, signup_id)
            jobs = (await session.execute(select(Job.kind, Job.payload))).all()
            types = (
                (await session.execute(select(Event.type).order_by(Event.occurred_at)))
                .scalars()
                .all()
            )
        assert signup is not None and signup.verified_at and signup.code_hash is None
        assert token not in repr(signup.__dict__) and signup.continuation_hash
        assert (
            "provisioning.start",
            {"signup_id": signup_id, "run_id": jobs[-1][1]["run_id"]},
        ) in jobs
        assert list(types) == ["activation.SignupStarted", "activation.EmailVerified"]
        assert token not in logs.text and code not in logs.text

    async def test_a_verified_session_cannot_verify_again(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        code = await code_for(database, signup_settings, EMAIL)
        assert (await verify(api, signup_id, code)).status_code == 200
        assert_problem(await verify(api, signup_id, code), 409, "SESSION_STATE")


class TestWrongCodes:
    async def test_each_wrong_code_counts_down_then_locks(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        code = await code_for(database, signup_settings, EMAIL)
        for remaining in (4, 3, 2, 1, 0):
            body = assert_problem(await verify(api, signup_id, wrong(code)), 400, "OTP_INVALID")
            assert body["attempts_remaining"] == remaining
        assert_problem(await verify(api, signup_id, code), 423, "OTP_LOCKED")

    async def test_resend_gives_fresh_tries_and_kills_the_old_code(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        old = await code_for(database, signup_settings, EMAIL)
        for _ in range(5):
            await verify(api, signup_id, wrong(old))
        clock.advance(timedelta(seconds=61))
        assert (
            await api.post(f"/v1/signup/{signup_id}/resend", headers=from_address())
        ).status_code == 202
        new = await code_for(database, signup_settings, EMAIL)
        if new != old:
            assert_problem(await verify(api, signup_id, old), 400, "OTP_INVALID")
        assert (await verify(api, signup_id, new)).status_code == 200

    async def test_twenty_concurrent_wrong_guesses_get_five_tries(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        code = await code_for(database, signup_settings, EMAIL)
        responses = await asyncio.gather(*(verify(api, signup_id, wrong(code)) for _ in range(20)))
        codes = sorted(r.json()["code"] for r in responses)
        assert codes.count("OTP_INVALID") == 5 and codes.count("OTP_LOCKED") == 15
        async with database.session() as session:
            signup = await session.get(SignupSession, signup_id)
        assert signup is not None and signup.failed_attempts == 5
        assert_problem(await verify(api, signup_id, code), 423, "OTP_LOCKED")

    async def test_ten_concurrent_right_codes_verify_once(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        code = await code_for(database, signup_settings, EMAIL)
        responses = await asyncio.gather(*(verify(api, signup_id, code) for _ in range(10)))
        assert sorted(r.status_code for r in responses) == [200] + [409] * 9
        async with database.session() as session:
            starts = (
                (await session.execute(select(Job).where(Job.kind == "provisioning.start")))
                .scalars()
                .all()
            )
        assert len(starts) == 1


class TestExpiry:
    async def test_expired_code_is_410_otp_expired(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        code = await code_for(database, signup_settings, EMAIL)
        clock.advance(timedelta(minutes=11))
        assert_problem(await verify(api, signup_id, code), 410, "OTP_EXPIRED")

    async def test_expired_session_is_410_session_expired(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup_id = await start(api)
        code = await code_for(database, signup_settings, EMAIL)
        clock.advance(timedelta(hours=25))
        assert_problem(await verify(api, signup_id, code), 410, "SESSION_EXPIRED")


class TestInput:
    async def test_malformed_codes_are_400_validation(self, api: httpx.AsyncClient) -> None:
        signup_id = await start(api)
        for code in ("12345", "1234567", "abcdef", ""):
            assert_problem(await verify(api, signup_id, code), 400, "VALIDATION")

    async def test_unknown_session(self, api: httpx.AsyncClient) -> None:
        assert_problem(await verify(api, "ses_nope", "123456"), 404, "NOT_FOUND")


class TestOneOwnerPerEmail:
    async def test_two_pending_signups_of_one_email_verify_once(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        started = []
        for slug in ("acme", "acme-two"):
            response = await api.post(
                "/v1/signup", json=signup_body(slug=slug), headers=from_address()
            )
            assert response.status_code == 201
            started.append(
                (response.json()["id"], await code_for(database, signup_settings, EMAIL))
            )
        (first, first_code), (second, second_code) = started
        assert (await verify(api, first, first_code)).status_code == 200
        assert_problem(await verify(api, second, second_code), 409, "EMAIL_EXISTS")
