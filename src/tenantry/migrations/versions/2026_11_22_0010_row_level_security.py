"""row-level security on every tenant table (PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22

Each tenant table gets RLS enabled and forced (so the tables' owner is held to
it too) and one policy: a row is visible and writable when its tenant column
equals the transaction's `app.tenant_id`, or when the transaction declared
cross-tenant work in `app.cross_tenant`. Superusers and BYPASSRLS roles ignore
all of it: the application must connect as a role that is neither.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tenant tables of this revision and their tenant column (later tables get
# their policy in the migration that creates them).
TENANT_TABLES = {
    "tenants": "id",
    "memberships": "tenant_id",
    "integration_keys": "tenant_id",
    "refresh_tokens": "tenant_id",
    "jobs": "tenant_id",
    "events": "tenant_id",
    "signup_sessions": "tenant_id",
    "provisioning_steps": "tenant_id",
    "mail_messages": "tenant_id",
    "authz_denials": "tenant_id",
}


def _predicate(column: str) -> str:
    return (
        f"{column} = current_setting('app.tenant_id', true) "
        "OR coalesce(current_setting('app.cross_tenant', true), '') <> ''"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in TENANT_TABLES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        predicate = _predicate(column)
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({predicate}) WITH CHECK ({predicate})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
