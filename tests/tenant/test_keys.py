"""Integration keys: shown once, listed without secrets, exchanged, revoked for good."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.cli.main import app
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock, utcnow
from tenantry.models import IdempotencyRecord
from tests.conftest import LogCapture
from tests.fixtures.secrets import seen
from tests.fixtures.workers import wait_for
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem


async def create(api: httpx.AsyncClient, owner: dict[str, str], **body: object) -> httpx.Response:
    payload = {"name": "crm sync", "scopes": ["jobs:read", "jobs:write"], **body}
    return await api.post(
        f"/v1/tenants/{owner['tenant_id']}/keys", json=payload, headers=auth(owner["access_token"])
    )


async def exchange(api: httpx.AsyncClient, secret: str, *, form: bool = True) -> httpx.Response:
    body = {"grant_type": "client_credentials", "client_secret": secret}
    return await api.post("/v1/auth/token", **({"data": body} if form else {"json": body}))  # type: ignore[arg-type]


class TestLifecycle:
    async def test_create_list_exchange_revoke(
        self, api: httpx.AsyncClient, owner: dict[str, str], logs: LogCapture
    ) -> None:
        created = await create(api, owner)
        assert created.status_code == 201, created.text
        key = created.json()
        secret = seen(key["secret"])
        assert secret.startswith("tnt_sk_") and key["prefix"] == secret[:11]
        assert key["scopes"] == ["jobs:read", "jobs:write"] and key["id"].startswith("key_")

        listed = (
            await api.get(
                f"/v1/tenants/{owner['tenant_id']}/keys", headers=auth(owner["access_token"])
            )
        ).json()
        (row,) = listed["data"]
        assert "secret" not in row and secret not in json.dumps(listed)
        assert row["last_four"] == secret[-4:] and row["last_used_at"] is None

        for form in (True, False):
            token = await exchange(api, secret, form=form)
            assert token.status_code == 200, token.text
            body = token.json()
            assert (body["token_type"], body["expires_in"], body["scope"]) == (
                "Bearer",
                900,
                "jobs:read jobs:write",
            )
        claims = (await api.get("/v1/whoami", headers=auth(body["access_token"]))).json()
        assert (claims["aud"], claims["tenant_id"], claims["sub"]) == (
            "integration",
            owner["tenant_id"],
            key["id"],
        )
        listed = (
            await api.get(
                f"/v1/tenants/{owner['tenant_id']}/keys", headers=auth(owner["access_token"])
            )
        ).json()
        assert listed["data"][0]["last_used_at"] is not None

        path = f"/v1/tenants/{owner['tenant_id']}/keys/{key['id']}/revoke"
        revoked = await api.post(path, headers=auth(owner["access_token"]))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert_problem(
            await api.post(path, headers=auth(owner["access_token"])), 409, "ALREADY_REVOKED"
        )
        assert_problem(await exchange(api, secret), 401, "TOKEN_REVOKED")

        # Tokens exchanged before the revoke die as well.
        async def refused() -> bool:
            response = await api.get("/v1/whoami", headers=auth(body["access_token"]))
            return response.status_code == 401

        await wait_for(refused)
        refusal = next(e for e in logs.events("key_exchange_refused"))
        assert refusal["key_prefix"] == key["prefix"] and refusal["reason"] == "revoked"
        assert secret not in logs.text

    async def test_expired_and_unknown_keys(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        expiring = (
            await create(api, owner, expires_at=(utcnow() + timedelta(hours=1)).isoformat())
        ).json()
        seen(expiring["secret"])
        clock.advance(timedelta(hours=2))
        assert_problem(await exchange(api, expiring["secret"]), 401, "TOKEN_EXPIRED")
        assert_problem(await exchange(api, "tnt_sk_unknown"), 401, "UNAUTHENTICATED")

    async def test_an_expiry_in_the_past_is_refused(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        past = (utcnow() - timedelta(seconds=1)).isoformat()
        body = assert_problem(await create(api, owner, expires_at=past), 400, "VALIDATION")
        assert body["errors"][0]["field"] == "expires_at"  # type: ignore[index]

    async def test_bad_scopes(self, api: httpx.AsyncClient, owner: dict[str, str]) -> None:
        body = assert_problem(await create(api, owner, scopes=["root"]), 400, "VALIDATION")
        assert body["errors"][0]["field"] == "scopes"  # type: ignore[index]
        assert_problem(await create(api, owner, scopes=[]), 400, "VALIDATION")


class TestIdempotentCreate:
    async def test_replay_shows_the_same_key_and_stores_no_secret(
        self, api: httpx.AsyncClient, owner: dict[str, str], database: Database
    ) -> None:
        path = f"/v1/tenants/{owner['tenant_id']}/keys"
        headers = {**auth(owner["access_token"]), "Idempotency-Key": "create-crm-key"}
        body = {"name": "crm sync", "scopes": ["jobs:read"]}
        first = await api.post(path, json=body, headers=headers)
        assert first.status_code == 201, first.text
        secret = seen(first.json()["secret"])
        again = await api.post(path, json=body, headers=headers)
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.headers["idempotent-replayed"] == "true"
        listed = (await api.get(path, headers=auth(owner["access_token"]))).json()["data"]
        assert len(listed) == 1
        async with database.session() as session:
            stored = (await session.execute(select(IdempotencyRecord.body))).scalars().all()
        assert stored and secret not in json.dumps(stored)
        other = await api.post(path, json={**body, "name": "other"}, headers=headers)
        assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")


class TestWhoMay:
    async def test_integration_with_admin_keys_may_create(
        self, api: httpx.AsyncClient, owner: dict[str, str]
    ) -> None:
        admin_key = seen((await create(api, owner, scopes=["admin:keys"])).json()["secret"])
        token = (await exchange(api, admin_key)).json()["access_token"]
        made = await api.post(
            f"/v1/tenants/{owner['tenant_id']}/keys",
            json={"name": "n", "scopes": ["jobs:read"]},
            headers=auth(token),
        )
        assert made.status_code == 201
        seen(made.json()["secret"])

    async def test_refusals(
        self, api: httpx.AsyncClient, owner: dict[str, str], signup_settings: Settings
    ) -> None:
        reader = seen((await create(api, owner, scopes=["jobs:read"])).json()["secret"])
        token = (await exchange(api, reader)).json()["access_token"]
        path = f"/v1/tenants/{owner['tenant_id']}/keys"
        body = {"name": "n", "scopes": ["jobs:read"]}
        assert (
            assert_problem(await api.post(path, json=body, headers=auth(token)), 403, "FORBIDDEN")[
                "reason"
            ]
            == "scope_missing"
        )
        member, _ = build_token_issuer(signup_settings).mint(
            subject="usr_m",
            audience=Audience.TENANT,
            ttl=timedelta(minutes=5),
            roles=["member"],
            tenant_id=owner["tenant_id"],
        )
        assert (
            assert_problem(await api.post(path, json=body, headers=auth(member)), 403, "FORBIDDEN")[
                "reason"
            ]
            == "role_mismatch"
        )
        other = await api.get("/v1/tenants/ten_other/keys", headers=auth(owner["access_token"]))
        assert assert_problem(other, 403, "FORBIDDEN")["reason"] == "tenant_mismatch"


class TestCli:
    async def test_keys_list_and_revoke(
        self, api: httpx.AsyncClient, owner: dict[str, str], signup_settings: Settings
    ) -> None:
        key = (await create(api, owner)).json()
        secret = seen(key["secret"])
        env = {
            "TENANTRY_DATABASE_URL": signup_settings.resolved_database_url,
            "TENANTRY_DATA_DIR": str(signup_settings.data_dir),
        }
        runner = CliRunner()
        listed = await asyncio.to_thread(
            runner.invoke, app, ["keys", "list", "--tenant", owner["tenant_id"], "--json"], env=env
        )
        assert [r["id"] for r in json.loads(listed.output)] == [
            key["id"]
        ] and secret not in listed.output
        revoked = await asyncio.to_thread(
            runner.invoke, app, ["keys", "revoke", key["id"]], env=env
        )
        assert revoked.exit_code == 0
        again = await asyncio.to_thread(runner.invoke, app, ["keys", "revoke", key["id"]], env=env)
        assert again.exit_code == 1
        assert_problem(await exchange(api, secret), 401, "TOKEN_REVOKED")

    async def test_a_key_revoked_elsewhere_fails_within_the_refresh_interval(
        self, api: httpx.AsyncClient, owner: dict[str, str], signup_settings: Settings
    ) -> None:
        """The exchange remembers a live key; another process's revocation (the CLI's) or
        suspension of its tenant reaches it through the auth refresh."""
        env = {
            "TENANTRY_DATABASE_URL": signup_settings.resolved_database_url,
            "TENANTRY_DATA_DIR": str(signup_settings.data_dir),
        }
        runner = CliRunner()
        for command in (["keys", "revoke"], ["tenants", "suspend"]):
            key = (await create(api, owner)).json()
            secret = seen(key["secret"])
            assert (await exchange(api, secret)).status_code == 200  # remembered now
            target = key["id"] if command[0] == "keys" else owner["tenant_id"]
            args = [*command, target] + (["--reason", "abuse"] if command[0] == "tenants" else [])
            done = await asyncio.to_thread(runner.invoke, app, args, env=env)
            assert done.exit_code == 0, done.output

            async def refused(secret: str = secret) -> bool:
                return (await exchange(api, secret)).status_code in (401, 403)

            await wait_for(refused)
        assert_problem(await exchange(api, secret), 403, "FORBIDDEN")
