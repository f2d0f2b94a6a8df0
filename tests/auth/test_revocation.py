"""Revocation: one token by jti, every token of a user or tenant until now, logout, keys."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tenantry.app import build_token_issuer
from tenantry.auth import revocation
from tenantry.auth import trust as trust_module
from tenantry.auth.revision import bump_revision
from tenantry.auth.revocation import RevocationList
from tenantry.auth.trust import Trust
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import clock
from tenantry.models import RevocationKind
from tests.auth.conftest import Cli, mint, status_of, until_status
from tests.test_errors import assert_problem


class TestRevocationList:
    def test_cut_offs_compare_whole_seconds(self) -> None:
        class Row:
            def __init__(self, kind: RevocationKind, target: str, at: float) -> None:
                self.kind, self.target = kind, target
                self.issued_before = clock.now().fromtimestamp(at, clock.now().tzinfo)

        revoked = RevocationList.of(
            [
                Row(RevocationKind.JTI, "jti_x", 0),
                Row(RevocationKind.SUBJECT, "usr_1", 1000.5),
                Row(RevocationKind.TENANT, "ten_1", 2000),
            ]
        )

        def claims(iat: int, sub: str = "usr_2", tenant: str | None = None, jti: str = "j") -> dict:
            return {"iat": iat, "sub": sub, "tenant_id": tenant, "jti": jti}

        assert revoked.revoked(claims(5000, jti="jti_x"))
        assert revoked.revoked(claims(1000, sub="usr_1"))  # same second: refused
        assert not revoked.revoked(claims(1001, sub="usr_1"))
        assert revoked.revoked(claims(2000, tenant="ten_1"))
        assert not revoked.revoked(claims(2001, tenant="ten_1"))
        assert not revoked.revoked(claims(1, sub="usr_9", tenant="ten_9"))


class TestRevokeCommand:
    async def test_jti_refuses_that_token_only(
        self, client: httpx.AsyncClient, auth_settings: Settings, cli: Cli
    ) -> None:
        doomed, kept = mint(auth_settings), mint(auth_settings)
        whoami = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {doomed}"})
        result = await cli("tokens", "revoke", "--jti", whoami.json()["jti"])
        assert result.exit_code == 0, result.output
        await until_status(client, doomed, 401)
        refused = await client.get("/v1/whoami", headers={"Authorization": f"Bearer {doomed}"})
        assert_problem(refused, 401, "TOKEN_REVOKED")
        assert await status_of(client, kept) == 200

    async def test_user_cut_off_spares_later_tokens_and_other_users(
        self, client: httpx.AsyncClient, auth_settings: Settings, cli: Cli
    ) -> None:
        old, other = mint(auth_settings), mint(auth_settings, subject="usr_2")
        assert (
            await cli("token", "revoke", "--user", "usr_1", "--reason", "stolen")
        ).exit_code == 0
        await until_status(client, old, 401)
        assert await status_of(client, other) == 200
        clock.advance(timedelta(seconds=1))
        assert await status_of(client, mint(auth_settings)) == 200

    async def test_tenant_cut_off(
        self, client: httpx.AsyncClient, auth_settings: Settings, cli: Cli
    ) -> None:
        theirs, elsewhere = mint(auth_settings), mint(auth_settings, tenant_id="ten_2")
        assert (await cli("tokens", "revoke", "--tenant", "ten_1")).exit_code == 0
        await until_status(client, theirs, 401)
        assert await status_of(client, elsewhere) == 200

    async def test_exactly_one_target(self, cli: Cli) -> None:
        assert (await cli("tokens", "revoke")).exit_code == 2
        assert (await cli("tokens", "revoke", "--user", "u", "--tenant", "t")).exit_code == 2


class TestRevokedHere:
    async def test_a_reload_that_read_before_the_commit_does_not_undo_it(
        self, database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A revocation this process commits while a reload is reading stays in force."""
        trust = Trust(database, settings, build_token_issuer(settings))
        async with database.session() as session:
            await bump_revision(session)  # the reload below has something to load
        original = trust_module.load_revocations
        reading, committed = asyncio.Event(), asyncio.Event()

        async def slow_load(session: Any) -> RevocationList:
            loaded = await original(session)  # read before the revocation lands
            reading.set()
            await committed.wait()
            return loaded

        monkeypatch.setattr(trust_module, "load_revocations", slow_load)
        reload = asyncio.create_task(trust.refresh())
        await reading.wait()
        async with database.session() as session:
            await revocation.revoke(session, settings, RevocationKind.SUBJECT, "usr_gone")
        committed.set()
        await reload
        claims = {"jti": "jti_x", "sub": "usr_gone", "iat": int(clock.now().timestamp()) - 5}
        assert trust.revocations.revoked(claims)
