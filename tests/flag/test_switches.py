"""Flags and degraded mode: each switched-off feature answers its 503 and loses nothing already
accepted; degraded mode lowers the admission caps and says so in health, while reads and token
exchange go on; a second process follows a change within two seconds."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.flag import service as flags
from tenantry.kit.clock import utcnow
from tenantry.models import JobStatus
from tenantry.worker.queue import enqueue
from tests.cli.test_servers import running
from tests.conftest import TENANTRY, make_settings
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import create_member, create_tenant, tokens_for
from tests.fixtures.servers import free_port
from tests.fixtures.workers import job_of, running_worker, wait_status
from tests.ops.test_funnel import operator
from tests.reliability.world import served_env
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem

SIGNUP = {"org_name": "Acme", "slug": "acme", "email": "ada@acme.example.com", "plan": "starter"}


async def switch(api: httpx.AsyncClient, settings: Settings, name: str, enabled: bool) -> None:
    """Through the admin API: in force in this process at once (others follow by polling)."""
    path = "/v1/admin/degraded" if name == "degraded_mode" else f"/v1/admin/flags/{name}"
    change = {"enabled": enabled, "reason": "test"}
    answer = await api.put(path, json=change, headers=operator(settings, "admin"))
    assert answer.status_code == 200, answer.text


class TestFlags:
    async def test_the_flag_list_names_each_flag_on_by_default(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        listed = (await api.get("/v1/admin/flags", headers=operator(signup_settings))).json()
        assert [(f["name"], f["enabled"]) for f in listed["data"]] == [
            (name, True)
            for name in (
                "signup",
                "login",
                "provisioning",
                "invitations",
                "jobs.enqueue",
                "webhooks.delivery",
            )
        ]

    async def test_each_switched_off_feature_answers_503_naming_the_flag(
        self, api: httpx.AsyncClient, signup_settings: Settings, database: Database
    ) -> None:
        tenant = await create_tenant(database)
        owner = await create_member(database, tenant.id, "owner")
        as_owner = auth(tokens_for(signup_settings, owner.id, tenant.id, "owner"))
        attempts = {
            "login": lambda: api.post("/v1/auth/login", json={"email": "x@acme.example.com"}),
            "invitations": lambda: api.post(
                f"/v1/tenants/{tenant.id}/invitations",
                json={"email": "bo@acme.example.com", "role": "member"},
                headers=as_owner,
            ),
            "jobs.enqueue": lambda: api.post(
                f"/v1/tenants/{tenant.id}/jobs",
                json={"kind": "canary.ping", "payload": {}},
                headers=as_owner,
            ),
        }
        for flag, attempt in attempts.items():
            await switch(api, signup_settings, flag, False)
            body = assert_problem(await attempt(), 503, "FEATURE_DISABLED")
            assert body["flag"] == flag
            await switch(api, signup_settings, flag, True)
            assert (await attempt()).status_code < 300, flag
        password = {"grant_type": "password", "username": owner.email, "password": "x" * 12}
        await switch(api, signup_settings, "login", False)
        assert_problem(await api.post("/v1/auth/token", data=password), 503, "FEATURE_DISABLED")

    async def test_signup_switched_off_is_signup_disabled_and_reads_go_on(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        started = (await api.post("/v1/signup", json=SIGNUP)).json()
        await switch(api, signup_settings, "signup", False)
        other = {**SIGNUP, "slug": "other", "email": "bo@other.example.com"}
        assert_problem(await api.post("/v1/signup", json=other), 503, "SIGNUP_DISABLED")
        assert (await api.get(f"/v1/signup/{started['id']}")).status_code == 200

    async def test_provisioning_switched_off_holds_its_queue_and_loses_nothing(
        self, database: Database, job_settings: Settings
    ) -> None:
        """The worker reads the switches with the paused queues, about once a second."""

        async def switch_here(enabled: bool) -> None:
            async with database.session() as session:
                await flags.set_flag(session, "provisioning", enabled, reason="test", by="test")

        await switch_here(False)
        async with database.session() as session:
            held = await enqueue(session, "canary.ping", {"n": 1}, queue="provisioning")
            free = await enqueue(session, "canary.ping", {"n": 2})
        async with running_worker(database, job_settings):
            await wait_status(database, free, JobStatus.COMPLETED)
            assert (await job_of(database, held)).status == JobStatus.PENDING
            await switch_here(True)
            await wait_status(database, held, JobStatus.COMPLETED)


class TestDegradedMode:
    async def test_caps_drop_health_says_so_reads_and_exchange_go_on(
        self, api: httpx.AsyncClient, signup_settings: Settings, database: Database
    ) -> None:
        tenant = await create_tenant(database)
        owner = await create_member(database, tenant.id, "owner")
        as_owner = auth(tokens_for(signup_settings, owner.id, tenant.id, "owner"))
        key = await api.post(
            f"/v1/tenants/{tenant.id}/keys",
            json={"name": "ci", "scopes": ["jobs:read"]},
            headers=as_owner,
        )
        jobs = f"/v1/tenants/{tenant.id}/jobs"

        async def submit() -> httpx.Response:
            body = {"kind": "canary.ping", "payload": {}}
            return await api.post(jobs, json=body, headers=as_owner)

        await switch(api, signup_settings, "degraded_mode", True)
        health = (await api.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["checks"]["degraded_mode"]["reason"] == "test"
        assert (await api.get("/health/ready")).json()["status"] == "degraded"
        accepted = [await submit() for _ in range(signup_settings.degraded_max_inflight_per_tenant)]
        assert {r.status_code for r in accepted} == {202}
        refused = assert_problem(await submit(), 429, "RATE_LIMITED")
        assert refused["cap"] == "tenant"
        assert (await api.get(jobs, headers=as_owner)).status_code == 200
        grant = {"grant_type": "client_credentials", "client_secret": key.json()["secret"]}
        assert (await api.post("/v1/auth/token", data=grant)).status_code == 200

        await switch(api, signup_settings, "degraded_mode", False)
        assert (await api.get("/health")).json()["status"] == "ok"
        assert (await submit()).status_code == 202

    async def test_operators_switch_it_over_the_admin_api_support_only_reads(
        self, api: httpx.AsyncClient, signup_settings: Settings
    ) -> None:
        change = {"enabled": True, "reason": "error rate over 5 %"}
        support, admin = operator(signup_settings), operator(signup_settings, "admin")
        refused = await api.put("/v1/admin/degraded", json=change, headers=support)
        assert_problem(refused, 403, "FORBIDDEN")
        answered = await api.put("/v1/admin/degraded", json=change, headers=admin)
        assert answered.json()["enabled"] is True
        assert answered.json()["changed_by"] == "ops_funnel"
        read = await api.get("/v1/admin/degraded", headers=support)
        assert read.json()["reason"] == "error rate over 5 %"
        assert (await api.get("/health")).json()["status"] == "degraded"  # at once, here
        unknown = await api.put("/v1/admin/flags/nope", json=change, headers=admin)
        assert_problem(unknown, 404, "NOT_FOUND")
        no_reason = await api.put("/v1/admin/flags/login", json={"enabled": False}, headers=admin)
        assert_problem(no_reason, 400, "VALIDATION")


def test_a_second_process_follows_within_two_seconds(database_url: str, tmp_path: Path) -> None:
    """Two `tenantry serve` processes on one database: a flag turned off through one, and
    degraded mode turned on from the CLI, are in force in the other within two seconds."""
    env = served_env(tmp_path / "data", database_url)
    settings = make_settings(tmp_path / "data", database_url=database_url)
    admin = operator(settings, "admin")
    with (
        running(["serve"], env, tmp_path, free_port()) as (first, _),
        running(["serve"], env, tmp_path, free_port()) as (second, _),
    ):
        change = {"enabled": False, "reason": "abuse wave"}
        assert httpx.put(f"{first}/v1/admin/flags/signup", json=change, headers=admin).is_success
        deadline = time.monotonic() + 2
        while httpx.post(f"{second}/v1/signup", json=SIGNUP).status_code != 503:
            assert time.monotonic() < deadline, "the second process did not follow the flag"
            time.sleep(0.05)

        subprocess.run([TENANTRY, "degraded", "on", "--reason", "latency"], env=env, check=True)
        deadline = time.monotonic() + 2
        while httpx.get(f"{second}/health").json()["status"] != "degraded":
            assert time.monotonic() < deadline, "the second process did not enter degraded mode"
            time.sleep(0.05)


class TestDegradedAuto:
    async def test_a_stalled_queue_advises_it_and_apply_enters_it(
        self, database: Database, settings: Settings
    ) -> None:
        code, output = await run_tenantry(settings, "degraded", "auto", "--json")
        assert code == 0 and json.loads(output)["enter"] is False
        async with database.session() as session:
            await enqueue(session, "canary.ping", {}, run_at=utcnow() - timedelta(minutes=30))
        code, output = await run_tenantry(settings, "degraded", "auto", "--json")
        advice = json.loads(output)
        assert (code, advice["enter"], advice["entered"]) == (1, True, False)
        met = [c["name"] for c in advice["conditions"] if c["met"]]
        assert met == ["queue_stall"]
        async with database.session() as session:
            assert not (await flags.degraded(session)).enabled
        code, output = await run_tenantry(settings, "degraded", "auto", "--apply", "--json")
        assert (code, json.loads(output)["entered"]) == (0, True)
        async with database.session() as session:
            state = await flags.degraded(session)
        assert state.enabled and state.reason == "degraded auto: queue_stall"
