"""Who may call what, generated from the route table: a new route is covered without anyone
editing this file, and a tenant or admin route without an access check fails it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import RouteContext
from sqlalchemy import func, select

from tenantry.app import build_token_issuer, create_app
from tenantry.auth.access import PlatformAccess, TenantAccess
from tenantry.auth.jwt import Audience
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.integration_key.service import SCOPES
from tenantry.models import AuthzDenial
from tests.auth.conftest import Cli
from tests.conftest import AppFactory, LogCapture
from tests.fixtures.routes import api_routes, concrete_path, dependencies
from tests.fixtures.workers import wait_for
from tests.test_errors import assert_problem

TENANT_PREFIX = "/v1/tenants/{tenant_id}"
ADMIN_PREFIX = "/v1/admin"


def token(settings: Settings, audience: Audience, **claims: object) -> str:
    minted, _ = build_token_issuer(settings).mint(
        subject="usr_probe" if audience is not Audience.INTEGRATION else "key_probe",
        audience=audience,
        ttl=timedelta(minutes=15),
        **claims,  # type: ignore[arg-type]
    )
    return minted


def requirement(route: RouteContext, kind: type) -> object | None:
    return next((call for call in dependencies(route.dependant) if isinstance(call, kind)), None)


def calls(app: FastAPI, prefix: str) -> Iterator[tuple[str, RouteContext]]:
    for route in api_routes(app):
        if str(route.path).startswith(prefix):
            for method in sorted(route.methods or ()):
                yield method, route


async def refusal(
    client: httpx.AsyncClient, method: str, path: str, bearer: str
) -> dict[str, object]:
    response = await client.request(
        method, path, json={}, headers={"Authorization": f"Bearer {bearer}"}
    )
    return assert_problem(response, 403, "FORBIDDEN")


@pytest.fixture
async def app_and_client(
    client_for: AppFactory, auth_settings: Settings
) -> Iterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(auth_settings)
    async with client_for(app=app) as client:
        yield app, client  # type: ignore[misc]


class TestMatrix:
    async def test_every_tenant_route_refuses_another_tenant(
        self, app_and_client: tuple[FastAPI, httpx.AsyncClient], auth_settings: Settings
    ) -> None:
        app, client = app_and_client
        other_owner = token(auth_settings, Audience.TENANT, roles=["owner"], tenant_id="ten_b")
        other_key = token(auth_settings, Audience.INTEGRATION, scopes=SCOPES, tenant_id="ten_b")
        covered = 0
        for method, route in calls(app, TENANT_PREFIX):
            assert requirement(route, TenantAccess), f"{method} {route.path} has no TenantAccess"
            path = concrete_path(route, tenant_id="ten_a")
            for bearer in (other_owner, other_key):
                if bearer is other_key and not requirement(route, TenantAccess).scopes:  # type: ignore[union-attr]
                    continue  # a user-only route refuses integrations by audience first
                body = await refusal(client, method, path, bearer)
                assert body["reason"] == "tenant_mismatch", (method, path, body)
            covered += 1
        assert covered >= 10

    def test_tenant_routes_never_cross_tenants(
        self, app_and_client: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        """Their sessions are scoped to the tenant in the path; the cross-tenant session is for
        platform routes only."""
        app, _ = app_and_client
        for method, route in calls(app, TENANT_PREFIX):
            calls_made = {getattr(c, "__name__", "") for c in dependencies(route.dependant)}
            assert not calls_made & {"_platform_session", "_platform_reader"}, (method, route.path)

    async def test_audiences_roles_and_scopes(
        self, app_and_client: tuple[FastAPI, httpx.AsyncClient], auth_settings: Settings
    ) -> None:
        app, client = app_and_client
        tenant_owner = token(auth_settings, Audience.TENANT, roles=["owner"], tenant_id="ten_a")
        member = token(auth_settings, Audience.TENANT, roles=["member"], tenant_id="ten_a")
        support = token(auth_settings, Audience.PLATFORM, roles=["support"])
        for method, route in calls(app, ADMIN_PREFIX):
            check = requirement(route, PlatformAccess)
            assert isinstance(check, PlatformAccess), f"{method} {route.path} has no PlatformAccess"
            path = concrete_path(route)
            body = await refusal(client, method, path, tenant_owner)
            assert body["reason"] == "audience_mismatch", (method, path)
            if "support" not in check.roles:
                assert (await refusal(client, method, path, support))["reason"] == "role_mismatch"

        for method, route in calls(app, TENANT_PREFIX):
            check = requirement(route, TenantAccess)
            assert isinstance(check, TenantAccess)
            path = concrete_path(route, tenant_id="ten_a")
            if "member" not in check.roles:
                body = await refusal(client, method, path, member)
                assert body["reason"] == "role_mismatch", (method, path)
            if not check.scopes:
                key = token(auth_settings, Audience.INTEGRATION, scopes=SCOPES, tenant_id="ten_a")
                assert (await refusal(client, method, path, key))["reason"] == "audience_mismatch"
                continue
            lacking = sorted(SCOPES - check.scopes)
            key = token(auth_settings, Audience.INTEGRATION, scopes=lacking, tenant_id="ten_a")
            assert (await refusal(client, method, path, key))["reason"] == "scope_missing", (
                method,
                path,
            )

    async def test_the_named_cases(
        self, app_and_client: tuple[FastAPI, httpx.AsyncClient], auth_settings: Settings
    ) -> None:
        """The cases the matrix generates, spelt out: a member creating keys, a jobs:read key
        enqueueing."""
        _, client = app_and_client
        member = token(auth_settings, Audience.TENANT, roles=["member"], tenant_id="ten_a")
        made = await refusal(client, "POST", "/v1/tenants/ten_a/keys", member)
        assert made["reason"] == "role_mismatch"
        reader = token(auth_settings, Audience.INTEGRATION, scopes=["jobs:read"], tenant_id="ten_a")
        enqueued = await refusal(client, "POST", "/v1/tenants/ten_a/jobs", reader)
        assert enqueued["reason"] == "scope_missing"


class TestDenials:
    async def test_logged_counted_recorded_and_summarised(
        self,
        app_and_client: tuple[FastAPI, httpx.AsyncClient],
        auth_settings: Settings,
        database: Database,
        cli: Cli,
        logs: LogCapture,
    ) -> None:
        _, client = app_and_client
        other = token(auth_settings, Audience.TENANT, roles=["owner"], tenant_id="ten_b")
        member = token(auth_settings, Audience.TENANT, roles=["member"], tenant_id="ten_a")
        for _ in range(3):
            await refusal(client, "GET", "/v1/tenants/ten_a/keys", other)
        await refusal(client, "POST", "/v1/tenants/ten_a/keys", member)

        (logged, *_) = logs.events("authz_deny")
        assert logged["reason"] == "tenant_mismatch"
        assert logged["route"] == "/v1/tenants/{tenant_id}/keys"
        assert (logged["subject"], logged["tenant_id"]) == ("usr_probe", "ten_b")
        metrics = (await client.get("/metrics")).text
        assert 'tenantry_authz_denials_total{reason="tenant_mismatch"}' in metrics

        async def recorded() -> bool:
            async with database.session() as session:
                total = select(func.coalesce(func.sum(AuthzDenial.count), 0))
                return (await session.execute(total)).scalar_one() == 4

        await wait_for(recorded)
        async with database.session() as session:
            rows = (await session.execute(select(func.count(AuthzDenial.id)))).scalar_one()
        assert rows < 4  # the same caller refused on the same route: counted, not repeated
        result = await cli("denials", "--since", "1h", "--json")
        assert result.exit_code == 0, result.output
        summary = {row["reason"]: row for row in json.loads(result.output)}
        assert summary["tenant_mismatch"]["count"] == 3
        assert summary["tenant_mismatch"]["top_route"] == "GET /v1/tenants/{tenant_id}/keys"
        assert summary["role_mismatch"]["count"] == 1
        assert (await cli("denials", "--since", "soon")).exit_code == 2
        table = await cli("denials")
        assert table.exit_code == 0 and "tenant_mismatch" in table.output
