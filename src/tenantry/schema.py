"""The database schema as Alembic manages it: upgrade to head, and detect drift.

Alembic runs on a connection we hand it (see migrations/env.py), so these
functions work from the CLI and from inside a running event loop alike.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.db import create_engine
from tenantry.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade(url: str) -> None:
    """Apply every pending migration with the owner's URL."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda conn: command.upgrade(alembic_config(conn), "head"))
    finally:
        await engine.dispose()


def _revision_drift(connection: Connection) -> list[str]:
    current = set(MigrationContext.configure(connection).get_current_heads())
    head = head_revisions()
    if current == head:
        return []
    shown = ", ".join(sorted(current)) or "no revision"
    return [f"database is at {shown}; the code expects {', '.join(sorted(head))}"]


def _full_drift(connection: Connection) -> list[str]:
    if problems := _revision_drift(connection):
        return problems
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        f"schema differs from the models: {diff}"
        for diff in compare_metadata(context, Base.metadata)
    ]


async def revision_drift(engine: AsyncEngine) -> list[str]:
    """Cheap check for health probes: is the database at the code's head revision?"""
    async with engine.connect() as connection:
        return await connection.run_sync(_revision_drift)


async def full_drift(url: str) -> list[str]:
    """Revision and model-versus-database comparison, for `tenantry migrate --check`."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_full_drift)
    finally:
        await engine.dispose()
