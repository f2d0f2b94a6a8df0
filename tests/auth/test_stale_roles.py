"""Authorization follows the database: a demoted owner or a removed admin cannot use the token
it held before the change, and no process lets such a token hand out access."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import User
from tests.conftest import AppFactory
from tests.fixtures.factories import create_tenant, member_token
from tests.tenant.conftest import auth
from tests.test_errors import assert_problem


def key_body() -> dict[str, object]:
    return {"name": "backdoor", "scopes": ["admin:keys"]}


async def attempts(
    client: httpx.AsyncClient, tenant_id: str, token: str, victim: str
) -> dict[str, httpx.Response]:
    """What the attacks tried with the old token: re-promote, demote another owner, make a key,
    invite an admin, and read the tenant."""
    base = f"/v1/tenants/{tenant_id}"
    headers = auth(token)
    return {
        "promote": await client.patch(
            f"{base}/members/{victim}", json={"role": "member"}, headers=headers
        ),
        "key": await client.post(f"{base}/keys", json=key_body(), headers=headers),
        "invite": await client.post(
            f"{base}/invitations",
            json={"email": "mole@example.com", "role": "admin"},
            headers=headers,
        ),
        "read": await client.get(f"{base}/members", headers=headers),
    }


async def two_members(
    database: Database, settings: Settings, first: str, second: str
) -> tuple[str, tuple[User, str], tuple[User, str]]:
    """A new tenant with two members of these roles, each with an access token."""
    tenant = await create_tenant(database)
    return (
        tenant.id,
        await member_token(database, settings, tenant.id, first),
        await member_token(database, settings, tenant.id, second),
    )


async def test_a_demoted_owner_cannot_undo_the_demotion(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    tenant_id, (alice, alice_token), (bob, bob_token) = await two_members(
        database, settings, "owner", "owner"
    )
    demoted = await client.patch(
        f"/v1/tenants/{tenant_id}/members/{alice.id}",
        json={"role": "member"},
        headers=auth(bob_token),
    )
    assert demoted.status_code == 200, demoted.text
    tried = await attempts(client, tenant_id, alice_token, bob.id)
    for response in tried.values():
        assert_problem(response, 401, "TOKEN_REVOKED")
    listed = await client.get(f"/v1/tenants/{tenant_id}/members", headers=auth(bob_token))
    roles = {m["user_id"]: m["role"] for m in listed.json()["data"]}
    assert roles == {alice.id: "member", bob.id: "owner"}
    keys = await client.get(f"/v1/tenants/{tenant_id}/keys", headers=auth(bob_token))
    assert keys.json()["data"] == []


async def test_a_removed_admin_leaves_no_way_back(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    tenant_id, (owner, owner_token), (admin, admin_token) = await two_members(
        database, settings, "owner", "admin"
    )
    removed = await client.delete(
        f"/v1/tenants/{tenant_id}/members/{admin.id}", headers=auth(owner_token)
    )
    assert removed.status_code == 204
    for response in (await attempts(client, tenant_id, admin_token, owner.id)).values():
        assert_problem(response, 401, "TOKEN_REVOKED")
    invitations = await client.get(
        f"/v1/tenants/{tenant_id}/invitations", headers=auth(owner_token)
    )
    assert invitations.json()["data"] == []


async def test_a_process_that_has_not_heard_of_the_change_still_refuses_the_writes(
    client_for: AppFactory, database: Database, settings: Settings
) -> None:
    """Another process whose revocation list is stale (its refresh is an hour away) still
    reads the caller's membership before it hands out a key, an invitation or a role."""
    stale = settings.model_copy(update={"auth_refresh_interval": timedelta(hours=1)})
    tenant_id, (alice, alice_token), (bob, bob_token) = await two_members(
        database, settings, "owner", "owner"
    )
    async with client_for(stale) as elsewhere, client_for(settings) as here:
        demoted = await here.patch(
            f"/v1/tenants/{tenant_id}/members/{alice.id}",
            json={"role": "member"},
            headers=auth(bob_token),
        )
        assert demoted.status_code == 200
        tried = await attempts(elsewhere, tenant_id, alice_token, bob.id)
    for name in ("promote", "key", "invite"):
        assert assert_problem(tried[name], 403, "FORBIDDEN")["reason"] == "role_mismatch", name
    assert tried["read"].status_code == 200  # reads follow within the refresh interval


@pytest.mark.parametrize("backend", ["postgres"])
async def test_owners_demoting_each_other_at_once_are_ordered(
    client: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    for _ in range(5):
        tenant_id, (alice, alice_token), (bob, bob_token) = await two_members(
            database, settings, "owner", "owner"
        )
        base = f"/v1/tenants/{tenant_id}/members"
        one, other = await asyncio.gather(
            client.patch(f"{base}/{bob.id}", json={"role": "member"}, headers=auth(alice_token)),
            client.patch(f"{base}/{alice.id}", json={"role": "member"}, headers=auth(bob_token)),
        )
        # The loser is refused: cut off (401), or, if it was past the token check already,
        # found to be a member now under the tenant's lock (403); never a deadlock's 500.
        assert sorted([one.status_code, other.status_code]) in ([200, 401], [200, 403])
        themselves = await asyncio.gather(
            *(
                client.patch(f"{base}/{user.id}", json={"role": "admin"}, headers=auth(token))
                for user, token in ((alice, alice_token), (bob, bob_token))
            )
        )
        assert all(r.status_code in (200, 401, 409) for r in themselves), [
            r.text for r in themselves
        ]
        listed = await client.get(
            base, headers=auth(alice_token if one.status_code == 200 else bob_token)
        )
        assert [m["role"] for m in listed.json()["data"]].count("owner") == 1
