"""Operators' view of signup: the admin listing, the CLI, the scheduled purge."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tenantry.app import build_token_issuer
from tenantry.auth.jwt import Audience
from tenantry.cli.main import app
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.worker.registry import registry
from tests.fixtures.signup import from_address, signup_body
from tests.fixtures.workers import running_worker, wait_for
from tests.test_errors import assert_problem


def bearer(
    settings: Settings, audience: Audience, roles: list[str], tenant_id: str | None = None
) -> dict[str, str]:
    token, _ = build_token_issuer(settings).mint(
        subject="op", audience=audience, ttl=timedelta(minutes=5), roles=roles, tenant_id=tenant_id
    )
    return {"Authorization": f"Bearer {token}"}


async def start_many(api: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for i in range(count):
        body = signup_body(slug=f"org-{i}", email=f"owner{i}@org{i}.example.com")
        response = await api.post("/v1/signup", json=body, headers=from_address())
        ids.append(response.json()["id"])
    return ids


class TestAdminListing:
    async def test_pages_through_sessions_newest_first(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        ids = await start_many(api, 5)
        headers = bearer(signup_settings, Audience.PLATFORM, ["support"])
        first = (
            await api.get("/v1/admin/signup-sessions", params={"limit": 2}, headers=headers)
        ).json()
        assert len(first["data"]) == 2 and first["next_cursor"]
        seen = [row["id"] for row in first["data"]]
        cursor = first["next_cursor"]
        while cursor:
            page = (
                await api.get(
                    "/v1/admin/signup-sessions",
                    params={"limit": 2, "cursor": cursor},
                    headers=headers,
                )
            ).json()
            seen += [row["id"] for row in page["data"]]
            cursor = page["next_cursor"]
        assert sorted(seen) == sorted(ids) and len(seen) == 5
        row = first["data"][0]
        assert row["email_domain"].endswith("example.com") and "email" not in row

    async def test_status_filter(self, api: httpx.AsyncClient, signup_settings: Settings) -> None:
        await start_many(api, 2)
        headers = bearer(signup_settings, Audience.PLATFORM, ["admin"])
        expired = await api.get(
            "/v1/admin/signup-sessions", params={"status": "EXPIRED"}, headers=headers
        )
        assert expired.json() == {"data": [], "next_cursor": None}

    async def test_refusals(self, api: httpx.AsyncClient, signup_settings: Settings) -> None:
        assert_problem(await api.get("/v1/admin/signup-sessions"), 401, "UNAUTHENTICATED")
        tenant = bearer(signup_settings, Audience.TENANT, ["owner"], tenant_id="ten_1")
        denied = await api.get("/v1/admin/signup-sessions", headers=tenant)
        assert assert_problem(denied, 403, "FORBIDDEN")["reason"] == "audience_mismatch"
        platform_nobody = bearer(signup_settings, Audience.PLATFORM, [])
        denied = await api.get("/v1/admin/signup-sessions", headers=platform_nobody)
        assert assert_problem(denied, 403, "FORBIDDEN")["reason"] == "role_mismatch"
        bad_cursor = await api.get(
            "/v1/admin/signup-sessions",
            params={"cursor": "!!"},
            headers=bearer(signup_settings, Audience.PLATFORM, ["admin"]),
        )
        assert_problem(bad_cursor, 400, "VALIDATION")


@pytest.fixture
def cli_env(signup_settings: Settings) -> dict[str, str]:
    return {
        "TENANTRY_DATABASE_URL": signup_settings.resolved_database_url,
        "TENANTRY_DATA_DIR": str(signup_settings.data_dir),
    }


class TestCli:
    async def test_sessions_list_show_and_purge(
        self, api: httpx.AsyncClient, cli_env: dict[str, str]
    ) -> None:
        (signup_id,) = await start_many(api, 1)
        runner = CliRunner()

        def invoke(*args: str) -> tuple[int, str]:
            result = runner.invoke(app, list(args), env=cli_env)
            return result.exit_code, result.output

        code, out = await asyncio.to_thread(invoke, "sessions", "list", "--json")
        assert code == 0 and [r["id"] for r in json.loads(out)] == [signup_id]
        code, out = await asyncio.to_thread(
            invoke, "sessions", "list", "--older-than", "2h", "--json"
        )
        assert json.loads(out) == []
        code, out = await asyncio.to_thread(invoke, "sessions", "show", signup_id, "--json")
        shown = json.loads(out)
        assert shown["email_domain"] == "org0.example.com" and "owner0" not in out
        assert (await asyncio.to_thread(invoke, "sessions", "show", "ses_nope"))[0] == 1
        assert (await asyncio.to_thread(invoke, "sessions", "list", "--older-than", "soon"))[0] == 2
        code, out = await asyncio.to_thread(invoke, "purge", "--dry-run")
        assert code == 0 and "0 sessions would be expired, 0 would be deleted" in out

    def test_promos_create_list_disable(self, cli_env: dict[str, str], database_url: str) -> None:
        runner = CliRunner()
        created = runner.invoke(
            app,
            ["promos", "create", "launch", "--expires-in", "30d", "--max-redemptions", "100"],
            env=cli_env,
        )
        assert created.exit_code == 0, created.output
        assert runner.invoke(app, ["promos", "create", "LAUNCH"], env=cli_env).exit_code == 1
        listed = json.loads(runner.invoke(app, ["promos", "list", "--json"], env=cli_env).output)
        assert [(p["code"], p["max_redemptions"], p["disabled"]) for p in listed] == [
            ("LAUNCH", 100, False)
        ]
        assert runner.invoke(app, ["promos", "disable", "launch"], env=cli_env).exit_code == 0
        assert (
            json.loads(runner.invoke(app, ["promos", "list", "--json"], env=cli_env).output)[0][
                "disabled"
            ]
            is True
        )
        assert runner.invoke(app, ["promos", "disable", "nope"], env=cli_env).exit_code == 1


class TestScheduledPurge:
    async def test_the_worker_runs_it(
        self, api: httpx.AsyncClient, database: Database, signup_settings: Settings, tmp_path: Path
    ) -> None:
        (signup_id,) = await start_many(api, 1)
        clock.advance(timedelta(hours=25))
        assert any(spec.name == "signup.purge" for spec in registry.schedules())
        from tenantry.worker.queue import enqueue

        async with database.session() as session:
            await enqueue(session, "signup.purge", {})
        async with running_worker(database, signup_settings):

            async def expired() -> bool:
                return (await api.get(f"/v1/signup/{signup_id}")).json()["status"] == "EXPIRED"

            await wait_for(expired)
