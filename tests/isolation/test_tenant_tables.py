"""The guard rail on both backends: every table is classified, and a table with a tenant
column cannot be added without its isolation policy (the PostgreSQL side of this is
`rls verify` on the migrated database, tests/isolation/test_rls.py)."""

from __future__ import annotations

from tenantry.models import Base
from tenantry.tenancy import PLATFORM_TABLES, TENANT_TABLES


def test_every_table_is_a_tenant_table_or_a_listed_platform_table() -> None:
    tables = set(Base.metadata.tables) | {"alembic_version"}
    assert not set(TENANT_TABLES) & set(PLATFORM_TABLES)
    assert tables == set(TENANT_TABLES) | set(PLATFORM_TABLES)


def test_a_table_with_a_tenant_column_is_a_tenant_table() -> None:
    with_tenant_column = {
        name for name, table in Base.metadata.tables.items() if "tenant_id" in table.columns
    }
    assert with_tenant_column <= set(TENANT_TABLES)
    for name, column in TENANT_TABLES.items():
        assert column in Base.metadata.tables[name].columns, name
