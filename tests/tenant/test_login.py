"""Sign-in by emailed code: no enumeration, the code rules, the tenant choice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from tenantry.config import Settings
from tenantry.datadir import secret_keys
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.kit.sealed import unseal
from tenantry.mail.service import SEAL_PURPOSE
from tenantry.models import MailMessage
from tests.fixtures.secrets import seen
from tests.fixtures.signup import from_address
from tests.tenant.conftest import auth, member_of_another_tenant
from tests.test_errors import assert_problem

EMAIL = "ada@acme.example.com"


async def login_code(database: Database, settings: Settings) -> str:
    async with database.session() as session:
        query = (
            select(MailMessage)
            .where(MailMessage.template == "login_code")
            .order_by(MailMessage.created_at.desc())
            .limit(1)
        )
        message = (await session.execute(query)).scalar_one()
    assert message.sealed_secrets
    return seen(unseal(message.sealed_secrets, secret_keys(settings), SEAL_PURPOSE)["code"])


async def mails(database: Database) -> int:
    async with database.session() as session:
        query = (
            select(func.count())
            .select_from(MailMessage)
            .where(MailMessage.template == "login_code")
        )
        return int((await session.execute(query)).scalar_one())


async def ask(api: httpx.AsyncClient, email: str) -> httpx.Response:
    return await api.post("/v1/auth/login", json={"email": email}, headers=from_address())


async def answer(api: httpx.AsyncClient, code: str, **extra: str) -> httpx.Response:
    return await api.post(
        "/v1/auth/login/verify",
        json={"email": EMAIL, "code": code, **extra},
        headers=from_address(),
    )


@pytest.fixture
async def code_sent(
    api: httpx.AsyncClient, owner: dict[str, str], database: Database, signup_settings: Settings
) -> str:
    """The owner asked for a sign-in code; here it is."""
    await ask(api, EMAIL)
    return await login_code(database, signup_settings)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


class TestRequest:
    async def test_same_answer_for_known_and_unknown_addresses(
        self, api: httpx.AsyncClient, owner: dict[str, str], database: Database
    ) -> None:
        known, unknown = await ask(api, EMAIL), await ask(api, "nobody@acme.example.com")
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()
        assert await mails(database) == 1

    async def test_cooldown_sends_one_code(
        self, api: httpx.AsyncClient, owner: dict[str, str], database: Database
    ) -> None:
        await ask(api, EMAIL)
        assert (await ask(api, EMAIL)).status_code == 202
        assert await mails(database) == 1
        clock.advance(timedelta(seconds=61))
        await ask(api, EMAIL)
        assert await mails(database) == 2


class TestVerify:
    async def test_right_code_gives_tokens_for_the_only_tenant(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        database: Database,
        signup_settings: Settings,
    ) -> None:
        await ask(api, EMAIL)
        response = await answer(api, await login_code(database, signup_settings))
        assert response.status_code == 200, response.text
        tokens = response.json()
        seen(tokens["refresh_token"])
        assert tokens["tenant_id"] == owner["tenant_id"] and tokens["user_id"] == owner["user_id"]
        claims = (await api.get("/v1/whoami", headers=auth(tokens["access_token"]))).json()
        assert claims["roles"] == ["owner"]

    async def test_code_is_single_use(self, api: httpx.AsyncClient, code_sent: str) -> None:
        code = code_sent
        responses = await asyncio.gather(*(answer(api, code) for _ in range(5)))
        assert sorted(r.status_code for r in responses) == [200, 400, 400, 400, 400]
        for r in responses:
            if r.status_code == 200:
                seen(r.json()["refresh_token"])

    async def test_wrong_codes_count_down_then_lock(
        self, api: httpx.AsyncClient, code_sent: str
    ) -> None:
        code = code_sent
        for remaining in (4, 3, 2, 1, 0):
            assert (
                assert_problem(await answer(api, wrong(code)), 400, "OTP_INVALID")[
                    "attempts_remaining"
                ]
                == remaining
            )
        assert_problem(await answer(api, code), 423, "OTP_LOCKED")

    async def test_expired_code(self, api: httpx.AsyncClient, code_sent: str) -> None:
        code = code_sent
        clock.advance(timedelta(minutes=11))
        assert_problem(await answer(api, code), 410, "OTP_EXPIRED")

    async def test_no_code_asked_looks_like_a_wrong_code(self, api: httpx.AsyncClient) -> None:
        assert (
            assert_problem(await answer(api, "123456"), 400, "OTP_INVALID")["attempts_remaining"]
            == 0
        )

    async def test_a_member_of_several_tenants_chooses(
        self,
        api: httpx.AsyncClient,
        owner: dict[str, str],
        database: Database,
        signup_settings: Settings,
    ) -> None:
        await member_of_another_tenant(database, "ten_second", owner["user_id"], "member")
        await ask(api, EMAIL)
        code = await login_code(database, signup_settings)
        undecided = await answer(api, code)
        assert assert_problem(undecided, 400, "VALIDATION")["errors"][0]["field"] == "tenant_id"  # type: ignore[index]
        outsider = await answer(api, code, tenant_id="ten_elsewhere")
        assert_problem(outsider, 400, "VALIDATION")
        chosen = await answer(api, code, tenant_id="ten_second")
        assert chosen.status_code == 200
        seen(chosen.json()["refresh_token"])
        claims = (await api.get("/v1/whoami", headers=auth(chosen.json()["access_token"]))).json()
        assert (claims["tenant_id"], claims["roles"]) == ("ten_second", ["member"])
