"""`tenantry invitations list/resend/revoke` on a tenant with a pending invitation."""

from __future__ import annotations

import asyncio
import json

import httpx
from typer.testing import CliRunner

from tenantry.cli.main import app
from tenantry.config import Settings
from tenantry.db import Database
from tests.fixtures.signup import invitation_token
from tests.tenant.conftest import auth


async def test_list_resend_revoke(
    api: httpx.AsyncClient,
    owner: dict[str, str],
    database: Database,
    signup_settings: Settings,
) -> None:
    created = await api.post(
        f"/v1/tenants/{owner['tenant_id']}/invitations",
        json={"email": "bea@acme.example.com", "role": "admin"},
        headers=auth(owner["access_token"]),
    )
    invitation_id = created.json()["id"]
    first = await invitation_token(database, signup_settings, "bea@acme.example.com")
    env = {
        "TENANTRY_DATABASE_URL": signup_settings.resolved_database_url,
        "TENANTRY_DATA_DIR": str(signup_settings.data_dir),
    }

    async def cli(*args: str) -> tuple[int, str]:
        result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)
        return result.exit_code, result.stdout

    code, out = await cli("invitations", "list", "--tenant", owner["tenant_id"], "--json")
    (row,) = json.loads(out)
    assert code == 0 and (row["id"], row["status"], row["role"]) == (
        invitation_id,
        "pending",
        "admin",
    )
    assert first not in out

    assert (await cli("invitations", "resend", invitation_id))[0] == 0
    assert await invitation_token(database, signup_settings, "bea@acme.example.com") != first
    code, out = await cli("invitations", "revoke", invitation_id)
    assert code == 0 and "revoked" in out
    code, _ = await cli("invitations", "revoke", invitation_id)
    assert code == 1
    code, out = await cli(
        "invitations", "list", "--tenant", owner["tenant_id"], "--status", "revoked"
    )
    assert code == 0 and invitation_id in out
