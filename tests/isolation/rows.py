"""One row per table for a given tenant, built from the models: every tenant table is covered
without a hand-written fixture, and a new table is covered as soon as it has a model."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String, Table, Text

from tenantry.kit.clock import utcnow
from tenantry.models import Base
from tenantry.tenancy import TENANT_TABLES


def _value(table: Table, column: Any, tenant_id: str) -> Any:
    if column.name == TENANT_TABLES.get(table.name):
        return tenant_id
    for key in column.foreign_keys:
        return f"{tenant_id}:{key.column.table.name}"
    kind = column.type
    if isinstance(kind, DateTime) or "DateTime" in type(kind).__name__:
        return utcnow()
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer | BigInteger):
        return 1
    if isinstance(kind, JSON) or "Json" in type(kind).__name__:
        return {}
    if isinstance(kind, String | Text):
        text = f"{tenant_id}:{table.name}:{column.name}"
        return text[-kind.length :] if getattr(kind, "length", None) else text
    raise TypeError(f"no sample value for {table.name}.{column.name} ({kind})")


def rows_for(tenant_id: str) -> list[tuple[Table, dict[str, Any]]]:
    """A row of every table a tenant table depends on, then of every tenant table, in
    foreign-key order; references point at the rows made here."""
    needed: set[str] = set(TENANT_TABLES)
    for name in list(needed):
        for key in Base.metadata.tables[name].foreign_keys:
            needed.add(key.column.table.name)
    rows = []
    for table in Base.metadata.sorted_tables:
        if table.name in needed:
            values = {c.name: _value(table, c, tenant_id) for c in table.columns}
            for column in table.primary_key.columns:
                if not column.foreign_keys and column.name != TENANT_TABLES.get(table.name):
                    values[column.name] = f"{tenant_id}:{table.name}"
            rows.append((table, values))
    return rows
