"""Re-queueing a stopped run: the admin endpoint, the CLI, and who may do it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from typer.testing import CliRunner

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.cli.main import app
from tenantry.config import Settings
from tenantry.db import Database
from tests.fixtures.signup import code_for, from_address, signup_body
from tests.fixtures.workers import running_worker, wait_for
from tests.test_errors import assert_problem


def token(settings: Settings, audience: Audience, *roles: str) -> dict[str, str]:
    raw, _ = build_token_issuer(settings).mint(
        subject="ops", audience=audience, ttl=timedelta(minutes=5), roles=roles
    )
    return {"Authorization": f"Bearer {raw}"}


async def status(api: httpx.AsyncClient, signup_id: str) -> str:
    return str((await api.get(f"/v1/signup/{signup_id}")).json()["status"])


@pytest.fixture
async def in_review(api: httpx.AsyncClient, database: Database, signup_settings: Settings) -> str:
    """A pro signup stopped in REVIEW_REQUIRED (no webhook URL configured)."""
    start = await api.post("/v1/signup", json=signup_body(plan="pro"), headers=from_address())
    signup_id = str(start.json()["id"])
    code = await code_for(database, signup_settings, signup_body()["email"])
    await api.post(f"/v1/signup/{signup_id}/verify", json={"code": code}, headers=from_address())
    async with running_worker(database, signup_settings):

        async def stopped() -> bool:
            return await status(api, signup_id) == "REVIEW_REQUIRED"

        await wait_for(stopped)
    return signup_id


class TestAdminRetry:
    async def test_retry_resumes_and_a_second_is_refused(
        self, api: httpx.AsyncClient, in_review: str, signup_settings: Settings, database: Database
    ) -> None:
        admin = {**token(signup_settings, Audience.PLATFORM, "admin"), "Idempotency-Key": "retry-1"}
        first = await api.post(f"/v1/admin/signup-sessions/{in_review}/retry", headers=admin)
        assert first.status_code == 202, first.text
        assert first.json()["status"] == "PROVISIONING" and first.json()["review_reason"] is None
        replayed = await api.post(f"/v1/admin/signup-sessions/{in_review}/retry", headers=admin)
        assert replayed.status_code == 202 and replayed.json() == first.json()
        second = await api.post(
            f"/v1/admin/signup-sessions/{in_review}/retry",
            headers=token(signup_settings, Audience.PLATFORM, "admin"),
        )
        assert_problem(second, 409, "SESSION_STATE")
        # Still no webhook URL: the run goes back to review, from the same checkpoint.
        async with running_worker(database, signup_settings):

            async def back_in_review() -> bool:
                return await status(api, in_review) == "REVIEW_REQUIRED"

            await wait_for(back_in_review)
        steps = (await api.get(f"/v1/signup/{in_review}")).json()["provisioning"]["steps"]
        assert [(s["name"], s["attempts"]) for s in steps if s["name"] != "welcome_mail"] == [
            ("create_tenant", 1),
            ("create_owner", 1),
            ("default_settings", 1),
            ("notify_host", 2),
        ]

    async def test_service_tokens_may_retry(
        self, api: httpx.AsyncClient, in_review: str, signup_settings: Settings
    ) -> None:
        service = token(signup_settings, Audience.INTERNAL, "service")
        assert (
            await api.post(f"/v1/admin/signup-sessions/{in_review}/retry", headers=service)
        ).status_code == 202

    async def test_who_may_not(
        self, api: httpx.AsyncClient, in_review: str, signup_settings: Settings
    ) -> None:
        path = f"/v1/admin/signup-sessions/{in_review}/retry"
        support = await api.post(path, headers=token(signup_settings, Audience.PLATFORM, "support"))
        assert assert_problem(support, 403, "FORBIDDEN")["reason"] == "role_mismatch"
        tenant = await api.post(path, headers=token(signup_settings, Audience.INTEGRATION))
        assert assert_problem(tenant, 403, "FORBIDDEN")["reason"] == "audience_mismatch"
        assert_problem(await api.post(path), 401, "UNAUTHENTICATED")
        missing = await api.post(
            "/v1/admin/signup-sessions/ses_nope/retry",
            headers=token(signup_settings, Audience.PLATFORM, "admin"),
        )
        assert_problem(missing, 404, "NOT_FOUND")


class TestCli:
    async def test_sessions_retry_and_tenants(
        self, api: httpx.AsyncClient, in_review: str, signup_settings: Settings
    ) -> None:
        env = {
            "TENANTRY_DATABASE_URL": signup_settings.resolved_database_url,
            "TENANTRY_DATA_DIR": str(signup_settings.data_dir),
        }
        runner = CliRunner()

        def invoke(*args: str) -> tuple[int, str]:
            result = runner.invoke(app, list(args), env=env)
            return result.exit_code, result.output

        code, out = await asyncio.to_thread(invoke, "sessions", "retry", in_review)
        assert code == 0 and "PROVISIONING" in out
        assert (await asyncio.to_thread(invoke, "sessions", "retry", in_review))[0] == 1
        code, out = await asyncio.to_thread(invoke, "tenants", "list", "--json")
        (tenant,) = json.loads(out)
        assert tenant["slug"] == "acme" and tenant["plan"] == "pro"
        code, out = await asyncio.to_thread(invoke, "tenants", "show", tenant["id"], "--json")
        shown = json.loads(out)
        assert [m["role"] for m in shown["members"]] == ["owner"]
        assert [s["name"] for s in shown["provisioning"]][:3] == [
            "create_tenant",
            "create_owner",
            "default_settings",
        ]
        code, out = await asyncio.to_thread(invoke, "sessions", "show", in_review, "--json")
        assert json.loads(out)["checkpoints"][0]["name"] == "create_tenant"
        assert (await asyncio.to_thread(invoke, "tenants", "show", "ten_nope"))[0] == 1
