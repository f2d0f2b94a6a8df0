"""From signup to a signed-in owner over HTTP, with the real worker; then refresh and logout."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tenantry.config import Settings
from tenantry.db import Database
from tests.fixtures.secrets import seen
from tests.fixtures.workers import running_worker, wait_for
from tests.tenant.conftest import auth, provisioned, verified
from tests.test_errors import assert_problem


@pytest.fixture
def owner(provisioned_owner: dict[str, str]) -> dict[str, str]:
    """These tests are about what the signup flow leaves: the owner it provisioned."""
    return provisioned_owner


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
        logout = await api.post(
            "/v1/auth/logout",
            json={"refresh_token": owner["refresh_token"]},
            headers=auth(owner["access_token"]),
        )
        assert logout.status_code == 204
        after = await api.post(
            "/v1/auth/token",
            json={"grant_type": "refresh_token", "refresh_token": owner["refresh_token"]},
        )
        assert_problem(after, 401, "TOKEN_REVOKED")

        # The access token sent along dies too, on every process at its next look.
        async def refused() -> bool:
            response = await api.get("/v1/whoami", headers=auth(owner["access_token"]))
            return response.status_code == 401

        await wait_for(refused)
        whoami = await api.get("/v1/whoami", headers=auth(owner["access_token"]))
        assert_problem(whoami, 401, "TOKEN_REVOKED")

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
