"""Optional passwords: set by a signed-in user, then the password grant."""

from __future__ import annotations

import httpx

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import User
from tests.conftest import AppFactory
from tests.fixtures.secrets import seen
from tests.fixtures.signup import from_address
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem

EMAIL = "ada@acme.example.com"
PASSWORD = seen("a long enough passphrase")


async def grant(api: httpx.AsyncClient, password: str, username: str = EMAIL) -> httpx.Response:
    body = {"grant_type": "password", "username": username, "password": password}
    return await api.post("/v1/auth/token", data=body, headers=from_address())


class TestPassword:
    async def test_set_then_sign_in_with_it(
        self, api: httpx.AsyncClient, owner: dict[str, str], database: Database
    ) -> None:
        assert_problem(await grant(api, PASSWORD), 401, "UNAUTHENTICATED")  # none set yet
        response = await api.post(
            "/v1/auth/password", json={"password": PASSWORD}, headers=auth(owner["access_token"])
        )
        assert response.status_code == 204
        async with database.session() as session:
            user = await session.get(User, owner["user_id"])
        assert (
            user is not None and user.password_hash and user.password_hash.startswith("$argon2id$")
        )
        assert PASSWORD not in user.password_hash
        signed_in = await grant(api, PASSWORD)
        assert signed_in.status_code == 200, signed_in.text
        seen(signed_in.json()["refresh_token"])
        assert signed_in.json()["tenant_id"] == owner["tenant_id"]
        assert "RateLimit" in signed_in.headers

    async def test_wrong_password_and_unknown_account_look_alike(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        await api.post(
            "/v1/auth/password", json={"password": PASSWORD}, headers=auth(owner["access_token"])
        )
        wrong = assert_problem(await grant(api, "not the passphrase"), 401, "UNAUTHENTICATED")
        unknown = assert_problem(
            await grant(api, PASSWORD, username="eve@acme.example.com"), 401, "UNAUTHENTICATED"
        )
        assert wrong["detail"] == unknown["detail"]

    async def test_too_short(self, api: httpx.AsyncClient, owner: dict[str, str]) -> None:
        response = await api.post(
            "/v1/auth/password", json={"password": "short"}, headers=auth(owner["access_token"])
        )
        assert_problem(response, 400, "VALIDATION")

    async def test_attempts_per_account_are_limited(
        self, client_for: AppFactory, signup_settings: Settings, owner: dict[str, str]
    ) -> None:
        async with client_for(signup_settings) as client:
            statuses = [(await grant(client, f"guess number {i}")).status_code for i in range(11)]
        assert statuses[:10] == [401] * 10 and statuses[10] == 429

    async def test_the_account_limit_holds_for_every_spelling_of_the_email(
        self, client_for: AppFactory, signup_settings: Settings, owner: dict[str, str]
    ) -> None:
        spellings = [EMAIL, EMAIL.upper(), EMAIL.title(), f"  {EMAIL.capitalize()}"]
        async with client_for(signup_settings) as client:
            statuses = [
                (await grant(client, f"guess {i}", username=spellings[i % 4])).status_code
                for i in range(11)
            ]
        assert statuses[:10] == [401] * 10 and statuses[10] == 429
