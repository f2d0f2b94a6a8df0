"""Alembic environment: runs on the connection tenantry.schema hands over.

From the `alembic` command line (for `alembic revision --autogenerate`), it
connects with TENANTRY_MIGRATION_DATABASE_URL (or the database URL) itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from tenantry.config import Settings
from tenantry.db import create_engine
from tenantry.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    engine = create_engine(Settings().resolved_migration_database_url, pool_size=1)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_standalone())
