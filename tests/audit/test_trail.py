"""The audit trail: operator actions from the admin API and the CLI are recorded with their
actor, reason, before and after; the hash chain survives concurrent appends, and `audit verify`
finds a changed record, a removed one and removed newest ones."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from tenantry.audit import trail
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import AuditRecord, SignupStatus
from tests.fixtures.cli import run_tenantry
from tests.fixtures.factories import (
    create_member,
    create_signup,
    create_tenant,
    tokens_for,
)
from tests.ops.test_funnel import operator


async def verify_cli(settings: Settings) -> tuple[int, dict[str, object]]:
    code, output = await run_tenantry(settings, "audit", "verify", "--json")
    return code, json.loads(output)


async def append(database: Database, count: int) -> None:
    for n in range(count):
        async with database.session() as session:
            await trail.record(session, actor="t", action="test.act", target=str(n), reason="r")


class TestRecording:
    async def test_api_and_cli_actions_are_recorded_with_actor_reason_before_and_after(
        self, client: httpx.AsyncClient, settings: Settings, database: Database
    ) -> None:
        tenant = await create_tenant(database)
        admin = operator(settings, "admin")
        change = {"enabled": False, "reason": "credential stuffing"}
        assert (await client.put("/v1/admin/flags/login", json=change, headers=admin)).is_success
        suspend = f"/v1/admin/tenants/{tenant.id}/suspend"
        assert (await client.post(suspend, json={"reason": "abuse"}, headers=admin)).is_success
        code, output = await run_tenantry(
            settings, "queues", "pause", "mail", "--reason", "smtp provider down"
        )
        assert code == 0, output

        page = (await client.get("/v1/admin/audit", headers=operator(settings))).json()
        newest_first = [(r["action"], r["target"], r["reason"]) for r in page["data"]]
        assert newest_first == [
            ("queue.pause", "mail", "smtp provider down"),
            ("tenant.suspend", tenant.id, "abuse"),
            ("flag.set", "login", "credential stuffing"),
        ]
        queue, suspended, flag = page["data"]
        assert queue["actor"].startswith("cli:") and "@" in queue["actor"]
        assert suspended["actor"] == flag["actor"] == "ops_funnel"
        assert (suspended["before"], suspended["after"]) == (
            {"status": "active"},
            {"status": "suspended"},
        )
        assert (flag["before"], flag["after"]) == ({"enabled": True}, {"enabled": False})

        code, output = await run_tenantry(
            settings, "audit", "list", "--action", "flag.set", "--json"
        )
        assert code == 0 and [r["target"] for r in json.loads(output)] == ["login"]

    async def test_each_operator_command_leaves_its_record(
        self, client: httpx.AsyncClient, settings: Settings, database: Database
    ) -> None:
        """Revocations, signing keys, session retry and mark-complete, from the CLI."""
        tenant = await create_tenant(database)
        owner = await create_member(database, tenant.id, "owner")
        as_owner = {"Authorization": f"Bearer {tokens_for(settings, owner.id, tenant.id, 'owner')}"}
        key = await client.post(
            f"/v1/tenants/{tenant.id}/keys",
            json={"name": "ci", "scopes": ["jobs:read"]},
            headers=as_owner,
        )
        stuck = await create_signup(database, status=SignupStatus.REVIEW_REQUIRED)
        done = await create_signup(database, status=SignupStatus.FAILED, tenant=tenant)
        done_owner = await create_member(database, tenant.id, "owner", email=done.email)
        assert done_owner.email == done.email
        commands = [
            ("keys", "revoke", key.json()["id"], "--reason", "leaked"),
            ("tokens", "revoke", "--user", owner.id, "--reason", "phished"),
            ("signing-keys", "add"),
            ("sessions", "retry", stuck.id),
            ("provisioning", "mark-complete", done.id, "--reason", "fixed by hand"),
        ]
        for command in commands:
            code, output = await run_tenantry(settings, *command)
            assert code == 0, (command, output)
        code, output = await run_tenantry(settings, "audit", "list", "--json")
        recorded = [(r["action"], r["reason"]) for r in reversed(json.loads(output))]
        assert recorded == [
            ("key.revoke", "leaked"),
            ("tokens.revoke_subject", "phished"),
            ("signing_key.add", None),
            ("signup.retry", None),
            ("signup.mark_complete", "fixed by hand"),
        ]

    async def test_the_list_pages_newest_first(
        self, client: httpx.AsyncClient, settings: Settings, database: Database
    ) -> None:
        await append(database, 5)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (
                await client.get("/v1/admin/audit", params=params, headers=operator(settings))
            ).json()
            seen += [r["target"] for r in page["data"]]
            if not (cursor := page["next_cursor"]):
                break
        assert seen == ["4", "3", "2", "1", "0"]

    async def test_a_failed_action_leaves_no_record(self, settings: Settings) -> None:
        code, _ = await run_tenantry(settings, "jobs", "retry", "job_missing", "--reason", "x")
        assert code == 1
        assert (await verify_cli(settings))[1]["records"] == 0


class TestChain:
    async def test_concurrent_appends_chain_one_after_another(
        self, database: Database, settings: Settings
    ) -> None:
        others = [Database(settings.resolved_database_url) for _ in range(4)]
        try:
            await asyncio.gather(*(append(each, 10) for each in others))
        finally:
            await asyncio.gather(*(each.dispose() for each in others))
        code, found = await verify_cli(settings)
        assert (code, found["intact"], found["records"]) == (0, True, 40), found

    @pytest.mark.parametrize(
        ("tamper", "problem"),
        [
            (update(AuditRecord).where(AuditRecord.seq == 3).values(reason="nothing"), "changed"),
            (delete(AuditRecord).where(AuditRecord.seq == 3), "missing"),
            (delete(AuditRecord).where(AuditRecord.seq >= 4), "the newest"),
        ],
        ids=["changed", "removed", "newest-removed"],
    )
    async def test_verify_finds_tampering(
        self, database: Database, settings: Settings, tamper: object, problem: str
    ) -> None:
        await append(database, 5)
        assert (await verify_cli(settings))[0] == 0
        async with database.session() as session:
            await session.execute(tamper)  # type: ignore[call-overload]
        code, found = await verify_cli(settings)
        assert code == 1 and not found["intact"]
        assert any(problem in line for line in found["problems"]), found  # type: ignore[attr-defined]

    async def test_a_rewritten_record_breaks_the_next_link(
        self, database: Database, settings: Settings
    ) -> None:
        """Rewriting a record and its own hash still breaks the chain at the next record."""
        await append(database, 3)
        async with database.session() as session:
            entry = await session.get(AuditRecord, 2)
            assert entry is not None
            entry.reason = "rewritten"
            entry.hash = trail._digest(entry)
        code, found = await verify_cli(settings)
        assert code == 1
        assert found["problems"] == [
            "record 3 (" + await _id(database, 3) + ") does not follow the one before"
        ]


async def _id(database: Database, seq: int) -> str:
    async with database.session() as session:
        return str(
            (
                await session.execute(select(AuditRecord.id).where(AuditRecord.seq == seq))
            ).scalar_one()
        )


@pytest.mark.parametrize("backend", ["postgres"])
async def test_the_application_role_cannot_rewrite_the_trail(
    database_url: str, database: Database
) -> None:
    await append(database, 1)
    app = Database(database_url)
    try:
        for statement in ("UPDATE audit_records SET reason = 'x'", "DELETE FROM audit_records"):
            with pytest.raises(DBAPIError, match="permission denied"):
                async with app.session(cross_tenant="test") as session:
                    await session.execute(text(statement))
        async with app.session(cross_tenant="test") as session:
            assert (
                await session.execute(select(func.count()).select_from(AuditRecord))
            ).scalar() == 1
    finally:
        await app.dispose()
