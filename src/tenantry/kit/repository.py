"""Thin reads by primary key that *require* the tenant for tenant data (Polar's repository
shape, without side effects): one `get_or_404` instead of a copy per domain.

A row of a tenant table (tenantry.tenancy.TENANT_TABLES) must belong to the tenant the
caller names; platform work that may read any tenant's row says so with `ANY_TENANT`.
Leaving the tenant out is a programming error, raised before any query.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.errors import NotFound
from tenantry.tenancy import TENANT_TABLES


class _AnyTenant(Enum):
    ANY = "any tenant"


ANY_TENANT = _AnyTenant.ANY  # operators' commands and platform tasks
Row = TypeVar("Row")


def _noun(model: type[Any]) -> str:
    """`signup_sessions` → `signup session`: what the 404 says was not found."""
    return str(model.__tablename__).removesuffix("s").replace("_", " ")


async def get_or_404(
    session: AsyncSession,
    model: type[Row],
    key: Any,
    *,
    tenant_id: str | Literal[_AnyTenant.ANY] | None = None,
    for_update: bool = False,
) -> Row:
    """The row with primary key `key`, or `404 NOT_FOUND` (also for another tenant's row)."""
    table = str(model.__tablename__)  # type: ignore[attr-defined]
    column = TENANT_TABLES.get(table)
    if column is not None and tenant_id is None:
        raise TypeError(f"{table} holds tenant data: name the tenant, or ANY_TENANT")
    row = await session.get(model, key, with_for_update=for_update)
    if row is None or (isinstance(tenant_id, str) and getattr(row, str(column)) != tenant_id):
        raise NotFound(f"no {_noun(model)} {key}")
    return row
