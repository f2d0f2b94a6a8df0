"""Fixtures for tenant tests: a provisioned tenant and its owner's first tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tenantry.app import build_token_issuer
from tenantry.auth import sessions
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.models import Membership, Tenant
from tests.fixtures.factories import create_member, create_tenant
from tests.fixtures.secrets import seen
from tests.fixtures.signup import code_for, from_address, signup_body
from tests.fixtures.workers import running_worker, wait_for


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
async def provisioned_owner(
    api: httpx.AsyncClient, database: Database, signup_settings: Settings
) -> AsyncIterator[dict[str, str]]:
    """The whole funnel: a signup verified, provisioned by a worker, its owner's first tokens."""
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


@pytest.fixture
async def owner(database: Database, signup_settings: Settings) -> dict[str, str]:
    """A tenant "Acme" owned by the signup fixtures' email, written by factories, and the owner's
    tokens as sign-in issues them: for tests that are not about the signup flow."""
    tenant = await create_tenant(database, slug="acme", name="Acme")
    user = await create_member(database, tenant.id, "owner", email=signup_body()["email"])
    async with database.session() as session:
        pair = await sessions.issue(
            session,
            signup_settings,
            build_token_issuer(signup_settings),
            user_id=user.id,
            tenant_id=tenant.id,
        )
    seen(pair.access_token)
    seen(pair.refresh_token)
    return pair.to_response()


async def member_of_another_tenant(
    database: Database, tenant_id: str, user_id: str, role: str
) -> None:
    """A second tenant, written directly, with `user_id` as a member: for users of two tenants."""
    now = utcnow()
    async with database.session() as session:
        session.add(
            Tenant(
                id=tenant_id,
                slug=tenant_id.removeprefix("ten_"),
                name=tenant_id.removeprefix("ten_").title(),
                plan="starter",
                status="active",
                settings={},
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        session.add(Membership(tenant_id=tenant_id, user_id=user_id, role=role, created_at=now))
