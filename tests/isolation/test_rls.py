"""The second wall, on PostgreSQL: row-level security alone keeps tenants apart, `rls verify`
finds every way it can be broken, and the application runs as a role it binds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner, Result

from tenantry.cli.main import app
from tenantry.db import Database
from tenantry.models import Base
from tenantry.tenancy import TENANT_TABLES
from tests.conftest import AppFactory, make_settings
from tests.fixtures.databases import APP_ROLE
from tests.isolation.rows import rows_for

pytestmark = pytest.mark.parametrize("backend", ["postgres"])

A, B = "ten_rls_a", "ten_rls_b"


@pytest.fixture
async def seeded(owner_database_url: str) -> None:
    """A row of every tenant table for tenant A and for tenant B, written by the owner."""
    owner = Database(owner_database_url)
    try:
        async with owner.session() as session:
            for tenant_id in (A, B):
                for table, values in rows_for(tenant_id):
                    await session.execute(insert(table).values(values))
    finally:
        await owner.dispose()


@asynccontextmanager
async def app_database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


class TestPolicies:
    async def test_rls_alone_hides_other_tenants_rows_in_every_tenant_table(
        self, seeded: None, database_url: str
    ) -> None:
        async with app_database(database_url) as database:
            for table_name, column in TENANT_TABLES.items():
                table = Base.metadata.tables[table_name]
                # No WHERE on the tenant: only the policy stands between A and B.
                everything = select(table.c[column])
                async with database.session(tenant_id=A) as session:
                    seen = set((await session.execute(everything)).scalars())
                assert seen == {A}, f"{table_name}: tenant A saw {seen}"
                async with database.session() as session:
                    unscoped = (await session.execute(everything)).scalars().all()
                assert unscoped == [], f"{table_name}: a session without a scope saw rows"
                async with database.session(cross_tenant="test") as session:
                    both = set((await session.execute(everything)).scalars())
                assert {A, B} <= both, table_name

    async def test_a_tenant_cannot_write_rows_for_another(
        self, seeded: None, database_url: str
    ) -> None:
        async with app_database(database_url) as database:
            for table_name, column in TENANT_TABLES.items():
                # Hand A's rows to B: the policy's WITH CHECK refuses the new rows.
                move = text(f"UPDATE {table_name} SET {column} = :b")  # noqa: S608
                with pytest.raises(DBAPIError, match="row-level security"):
                    async with database.session(tenant_id=A) as session:
                        await session.execute(move, {"b": B})
            events, values = next((t, v) for t, v in rows_for(B) if t.name == "events")
            with pytest.raises(DBAPIError, match="row-level security"):
                async with database.session(tenant_id=A) as session:
                    await session.execute(insert(events).values({**values, "id": "evt_x"}))


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def env(database_url: str, owner_database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TENANTRY_DATABASE_URL": database_url,
        "TENANTRY_MIGRATION_DATABASE_URL": owner_database_url,
        "TENANTRY_DATA_DIR": str(tmp_path),
    }


async def as_owner(owner_database_url: str, *statements: str) -> None:
    owner = Database(owner_database_url)
    try:
        async with owner.session() as session:
            for statement in statements:
                await session.execute(text(statement))
    finally:
        await owner.dispose()


class TestVerify:
    def test_passes_on_a_correct_set_up(self, env: dict[str, str]) -> None:
        result = run(env, "rls", "verify", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["findings"] == []
        assert {t["table"] for t in report["tables"]} == set(TENANT_TABLES)
        assert all(t["rls"] and t["force"] and t["policy"] for t in report["tables"])
        assert report["role"] == {
            "name": APP_ROLE,
            "superuser": False,
            "bypassrls": False,
            "owns": [],
        }
        table = run(env, "rls", "verify")
        assert table.exit_code == 0 and "tenant isolation holds" in table.output

    @pytest.mark.parametrize(
        ("breakage", "named"),
        [
            ("ALTER TABLE integration_keys NO FORCE ROW LEVEL SECURITY", "integration_keys"),
            ("DROP POLICY tenant_isolation ON events", "events"),
            ("ALTER TABLE jobs DISABLE ROW LEVEL SECURITY", "jobs"),
            ("CREATE TABLE invoices (id text PRIMARY KEY, tenant_id text)", "invoices"),
            ("CREATE TABLE notes (id text PRIMARY KEY)", "notes"),
        ],
    )
    def test_fails_naming_the_table(
        self, env: dict[str, str], owner_database_url: str, breakage: str, named: str
    ) -> None:
        asyncio.run(as_owner(owner_database_url, breakage))
        result = run(env, "rls", "verify")
        assert result.exit_code == 1
        assert named in result.output and "finding" in result.output

    def test_fails_when_the_app_role_is_superuser_or_owns_a_table(
        self, env: dict[str, str], owner_database_url: str
    ) -> None:
        asyncio.run(as_owner(owner_database_url, f"ALTER ROLE {APP_ROLE} SUPERUSER"))
        try:
            result = run(env, "rls", "verify")
            assert result.exit_code == 1 and "is a superuser" in result.output
        finally:
            asyncio.run(as_owner(owner_database_url, f"ALTER ROLE {APP_ROLE} NOSUPERUSER"))
        asyncio.run(as_owner(owner_database_url, f"ALTER TABLE events OWNER TO {APP_ROLE}"))
        result = run(env, "rls", "verify")
        assert result.exit_code == 1 and f"{APP_ROLE} owns events" in result.output

    async def test_deep_health_counts_unprotected_tables(
        self, client_for: AppFactory, database_url: str, owner_database_url: str, tmp_path: Path
    ) -> None:
        settings = make_settings(tmp_path, database_url=database_url)
        async with client_for(settings) as client:
            healthy = (await client.get("/health?deep=true")).json()["checks"]
            assert healthy["tenant_isolation"] == {"status": "ok", "unprotected_tables": 0}
            await as_owner(
                owner_database_url,
                "ALTER TABLE memberships NO FORCE ROW LEVEL SECURITY",
                "DROP POLICY tenant_isolation ON jobs",
            )
            response = await client.get("/health?deep=true")
            check = response.json()["checks"]["tenant_isolation"]
            assert check == {"status": "degraded", "unprotected_tables": 2}
            assert response.json()["status"] == "degraded"


class TestRoles:
    def test_create_roles_then_migrate_gives_a_least_privilege_role(
        self, owner_database_url: str, tmp_path: Path
    ) -> None:
        app_url = owner_database_url.replace("postgres@", "reporting_app:s3cret-pw@")
        env = {
            "TENANTRY_DATABASE_URL": app_url,
            "TENANTRY_MIGRATION_DATABASE_URL": owner_database_url,
            "TENANTRY_DATA_DIR": str(tmp_path),
        }
        for _ in range(2):  # a second run brings the role back in line
            created = run(env, "db", "create-roles")
            assert created.exit_code == 0, created.output
        assert run(env, "migrate").exit_code == 0
        result = run(env, "rls", "verify", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["role"]["name"] == "reporting_app"

    def test_create_roles_refuses_the_owner_as_app_role(
        self, owner_database_url: str, tmp_path: Path
    ) -> None:
        env = {
            "TENANTRY_DATABASE_URL": owner_database_url,
            "TENANTRY_MIGRATION_DATABASE_URL": owner_database_url,
            "TENANTRY_DATA_DIR": str(tmp_path),
        }
        result = run(env, "db", "create-roles")
        assert result.exit_code == 1 and "another role" in result.output

    def test_the_app_role_cannot_change_the_schema(self, database_url: str) -> None:
        async def attempt() -> None:
            async with app_database(database_url) as database, database.session() as session:
                await session.execute(text("ALTER TABLE jobs DISABLE ROW LEVEL SECURITY"))

        with pytest.raises(DBAPIError, match="must be owner"):
            asyncio.run(attempt())
