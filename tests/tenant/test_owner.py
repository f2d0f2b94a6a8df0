"""From signup to a signed-in owner over HTTP, with the real worker; then refresh and logout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tenantry.config import Settings
from tenantry.db import Database
from tests.fixtures.secrets import seen
from tests.fixtures.signup import code_for, from_address, signup_body
from tests.fixtures.workers import running_worker, wait_for
from tests.test_errors import assert_problem


@dataclass
class Verified:
    signup_id: str
    continuation_token: str


async def verified(
    api: httpx.AsyncClient, database: Database, settings: Settings, **body: str
) -> Verified:
    start = await api.post("/v1/signup", json=signup_body(**body), headers=from_address())
    signup_id = start.json()["id"]
    code = await code_for(database, settings, body.get("email", signup_body()["email"]))
    done = await api.post(
        f"/v1/signup/{signup_id}/verify", json={"code": code}, headers=from_address()
    )
    return Verified(signup_id, seen(done.json()["continuation_token"]))


async def provisioned(api: httpx.AsyncClient, signup_id: str) -> None:
    async def ready() -> bool:
        return (await api.get(f"/v1/signup/{signup_id}")).json()["status"] == "PROVISIONED"

    await wait_for(ready)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def owner(
    api: httpx.AsyncClient, database: Database, signup_settings: Settings
) -> AsyncIterator[dict[str, str]]:
    """A provisioned tenant and its owner's first tokens."""
    signup = await verified(api, database, signup_settings)
    async with running_worker(database, signup_settings):
        await provisioned(api, signup.signup_id)
    response = await api.post(
        f"/v1/signup/{signup.signup_id}/session",
        json={"continuation_token": signup.continuation_token},
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    seen(tokens["refresh_token"])
    yield tokens


class TestOwnerSession:
    async def test_tokens_work_on_the_tenant(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        assert owner["token_type"] == "Bearer" and owner["expires_in"] == 900
        assert owner["refresh_token"].startswith("tnt_rt_")
        tenant_id = owner["tenant_id"]
        claims = (await api.get("/v1/whoami", headers=auth(owner["access_token"]))).json()
        assert (claims["aud"], claims["tenant_id"], claims["roles"], claims["sub"]) == (
            "tenant",
            tenant_id,
            ["owner"],
            owner["user_id"],
        )
        tenant = (
            await api.get(f"/v1/tenants/{tenant_id}", headers=auth(owner["access_token"]))
        ).json()
        assert tenant["slug"] == "acme" and tenant["plan"] == "starter"
        members = (
            await api.get(f"/v1/tenants/{tenant_id}/members", headers=auth(owner["access_token"]))
        ).json()
        assert [(m["email"], m["role"]) for m in members["data"]] == [
            ("ada@acme.example.com", "owner")
        ]
        assert members["next_cursor"] is None
        progress = (
            await api.get(
                f"/v1/tenants/{tenant_id}/provisioning", headers=auth(owner["access_token"])
            )
        ).json()
        assert progress["status"] == "completed" and len(progress["steps"]) == 4

    async def test_another_tenant_is_refused(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        for path in ("", "/members", "/provisioning"):
            response = await api.get(
                f"/v1/tenants/ten_other{path}", headers=auth(owner["access_token"])
            )
            assert assert_problem(response, 403, "FORBIDDEN")["reason"] == "tenant_mismatch"


class TestContinuationToken:
    async def test_not_ready_then_once_only(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup = await verified(api, database, signup_settings)
        body = {"continuation_token": signup.continuation_token}
        assert_problem(
            await api.post(f"/v1/signup/{signup.signup_id}/session", json=body), 409, "NOT_READY"
        )
        async with running_worker(database, signup_settings):
            await provisioned(api, signup.signup_id)
        responses = await asyncio.gather(
            *(api.post(f"/v1/signup/{signup.signup_id}/session", json=body) for _ in range(10))
        )
        assert sorted(r.status_code for r in responses) == [200] + [409] * 9
        assert {r.json()["code"] for r in responses if r.status_code == 409} == {"TOKEN_USED"}
        for r in responses:
            if r.status_code == 200:
                seen(r.json()["refresh_token"])

    async def test_a_wrong_token_is_refused(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings
    ) -> None:
        signup = await verified(api, database, signup_settings)
        wrong = await api.post(
            f"/v1/signup/{signup.signup_id}/session", json={"continuation_token": "tnt_ct_nope"}
        )
        assert_problem(wrong, 401, "UNAUTHENTICATED")


class TestRefresh:
    async def test_rotation_and_reuse_revokes_the_family(
        self, api: httpx.AsyncClient, owner: dict[str, str], logs: object
    ) -> None:
        first = owner["refresh_token"]
        rotated = await api.post(
            "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": first}
        )
        assert rotated.status_code == 200, rotated.text
        second = seen(rotated.json()["refresh_token"])
        assert second != first and rotated.headers["cache-control"] == "no-store"
        # JSON works too, and the second token is good...
        third = await api.post(
            "/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": second}
        )
        assert third.status_code == 200
        seen(third.json()["refresh_token"])
        # ...but presenting the first again means it was copied: the family dies.
        replay = await api.post(
            "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": first}
        )
        assert_problem(replay, 401, "TOKEN_REVOKED")
        latest = await api.post(
            "/v1/auth/token",
            json={"grant_type": "refresh_token", "refresh_token": third.json()["refresh_token"]},
        )
        assert_problem(latest, 401, "TOKEN_REVOKED")
        assert any(e["event"] == "refresh_token_reuse" for e in logs.events())  # type: ignore[attr-defined]

    async def test_logout_revokes(self, api: httpx.AsyncClient, owner: dict[str, str]) -> None:
        assert (
            await api.post("/v1/auth/logout", json={"refresh_token": owner["refresh_token"]})
        ).status_code == 204
        after = await api.post(
            "/v1/auth/token",
            json={"grant_type": "refresh_token", "refresh_token": owner["refresh_token"]},
        )
        assert_problem(after, 401, "TOKEN_REVOKED")

    async def test_bad_requests(self, api: httpx.AsyncClient) -> None:
        assert_problem(
            await api.post("/v1/auth/token", json={"grant_type": "password"}), 400, "VALIDATION"
        )
        assert_problem(
            await api.post(
                "/v1/auth/token", content=b"[1]", headers={"content-type": "application/json"}
            ),
            400,
            "VALIDATION",
        )
        unknown = await api.post(
            "/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": "tnt_rt_nope"}
        )
        assert_problem(unknown, 401, "UNAUTHENTICATED")
