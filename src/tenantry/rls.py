"""`tenantry rls verify`: is the second wall standing? (PostgreSQL)

Three checks, each naming what is wrong:
1. every tenant table (tenantry.tenancy.TENANT_TABLES) has RLS enabled and
   forced and its `tenant_isolation` policy; no other table has a `tenant_id`
   column; every table is either a tenant table or listed as a platform one;
2. the application's role is not a superuser, has no BYPASSRLS and owns no
   table (any of those ignores or can switch off the policies);
3. a live probe as that role, rolled back: a tenant sees none of another
   tenant's rows, and cannot write a row for another tenant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.db import create_engine
from tenantry.kit.clock import utcnow
from tenantry.tenancy import PLATFORM_TABLES, POLICY, TENANT_TABLES, scope_statement

TENANT_COLUMN = "tenant_id"


@dataclass(frozen=True)
class TableState:
    table: str
    column: str
    rls: bool
    force: bool
    policy: bool

    @property
    def protected(self) -> bool:
        return self.rls and self.force and self.policy


@dataclass
class Report:
    tables: list[TableState] = field(default_factory=list)
    role: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [asdict(t) for t in self.tables],
            "role": self.role,
            "findings": self.findings,
        }


_TABLES = text(
    """
    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
           EXISTS (SELECT 1 FROM pg_policies p
                   WHERE p.schemaname = 'public' AND p.tablename = c.relname
                     AND p.policyname = :policy),
           EXISTS (SELECT 1 FROM information_schema.columns col
                   WHERE col.table_schema = 'public' AND col.table_name = c.relname
                     AND col.column_name = :column)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    ORDER BY c.relname
    """
)


@dataclass(frozen=True)
class Schema:
    """What the database holds: the tenant tables' protection, and tables that are off-list."""

    tenant_tables: list[TableState]
    stray_tenant_tables: list[str]  # a tenant column, but no place among the tenant tables
    unlisted: list[str]  # neither a tenant table nor a listed platform table

    @property
    def unprotected(self) -> int:
        return sum(not t.protected for t in self.tenant_tables) + len(self.stray_tenant_tables)


async def read_schema(connection: AsyncConnection) -> Schema:
    rows = (await connection.execute(_TABLES, {"policy": POLICY, "column": TENANT_COLUMN})).all()
    schema = Schema([], [], [])
    for name, rls, force, policy, has_tenant_column in rows:
        if name in TENANT_TABLES:
            schema.tenant_tables.append(TableState(name, TENANT_TABLES[name], rls, force, policy))
        elif has_tenant_column:
            schema.stray_tenant_tables.append(name)
        elif name not in PLATFORM_TABLES:
            schema.unlisted.append(name)
    return schema


def table_findings(schema: Schema) -> list[str]:
    findings = [
        f"{name} has a {TENANT_COLUMN} column but is not a tenant table"
        for name in schema.stray_tenant_tables
    ]
    findings += [
        f"{name} is neither a tenant table nor listed as a platform table"
        for name in schema.unlisted
    ]
    for state in schema.tenant_tables:
        missing = [
            what
            for what, present in (
                ("RLS is disabled", state.rls),
                ("FORCE is off", state.force),
                (f"no {POLICY} policy", state.policy),
            )
            if not present
        ]
        if missing:
            findings.append(f"{state.table}: {', '.join(missing)}")
    return findings


_ROLE = text(
    """
    SELECT r.rolname, r.rolsuper, r.rolbypassrls,
           ARRAY(SELECT c.relname FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relowner = r.oid AND c.relkind IN ('r', 'p')
                 ORDER BY c.relname)
    FROM pg_roles r WHERE r.rolname = current_user
    """
)


async def role_state(connection: AsyncConnection) -> tuple[dict[str, Any], list[str]]:
    name, superuser, bypass, owned = (await connection.execute(_ROLE)).one()
    role = {"name": name, "superuser": superuser, "bypassrls": bypass, "owns": list(owned)}
    findings = []
    if superuser:
        findings.append(f"the application role {name} is a superuser: RLS does not apply to it")
    if bypass:
        findings.append(f"the application role {name} has BYPASSRLS")
    if owned:
        findings.append(f"the application role {name} owns {', '.join(owned)}")
    return role, findings


_PROBE_A, _PROBE_B = "ten_rls_probe_a", "ten_rls_probe_b"


async def _probe_tenant(connection: AsyncConnection, tenant_id: str) -> None:
    now = utcnow()
    await connection.execute(
        text(
            "INSERT INTO tenants (id, slug, name, plan, status, settings, created_at, updated_at)"
            " VALUES (:id, :id, 'rls probe', 'probe', 'active', '{}', :now, :now)"
        ),
        {"id": tenant_id, "now": now},
    )


async def probe(connection: AsyncConnection) -> list[str]:
    """Write two tenants, look and write across them, and roll everything back."""
    findings = []
    transaction = await connection.begin()
    try:
        await connection.execute(scope_statement(cross_tenant="rls probe"))
        for tenant_id in (_PROBE_A, _PROBE_B):
            await _probe_tenant(connection, tenant_id)
        await connection.execute(scope_statement(tenant_id=_PROBE_B))
        seen = await connection.scalars(
            text("SELECT id FROM tenants WHERE id IN (:a, :b)"), {"a": _PROBE_A, "b": _PROBE_B}
        )
        if _PROBE_A in set(seen):
            findings.append("probe: a session of one tenant read another tenant's row")
        await connection.execute(scope_statement(tenant_id=_PROBE_A))
        savepoint = await connection.begin_nested()
        try:
            await _probe_tenant(connection, "ten_rls_probe_c")
            findings.append("probe: a session of one tenant wrote a row for another tenant")
        except DBAPIError:
            pass  # refused by the policy, as it must be
        finally:
            if savepoint.is_active:
                await savepoint.rollback()
    finally:
        await transaction.rollback()
    return findings


async def verify(app_url: str) -> Report:
    """Every check, as the application's own role."""
    engine = create_engine(app_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            report = Report()
            schema = await read_schema(connection)
            report.tables = schema.tenant_tables
            report.role, role_findings = await role_state(connection)
            await connection.rollback()
            report.findings = table_findings(schema) + role_findings + await probe(connection)
            return report
    finally:
        await engine.dispose()
