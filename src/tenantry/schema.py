"""The database schema as Alembic manages it: upgrade to head, and detect drift.

Alembic runs on a connection we hand it (see migrations/env.py), so these
functions work from the CLI and from inside a running event loop alike.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.config import Settings
from tenantry.db import create_engine
from tenantry.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revisions() -> frozenset[str]:
    """The code's head revisions: fixed for the life of the process, and reading them
    compiles every migration file (milliseconds a health probe should not pay)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade(url: str, *, app_role: str | None = None) -> None:
    """Apply every pending migration with the owner's URL, then grant the application's role
    (when it is another role) what it needs on every table: data, never the schema."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda conn: command.upgrade(alembic_config(conn), "head"))
            if app_role is not None:
                await connection.run_sync(lambda conn: _grant(conn, app_role))
    finally:
        await engine.dispose()


async def migrate(settings: Settings) -> None:
    """`upgrade` as the deployment's settings say: the migration URL, then grants."""
    await upgrade(settings.resolved_migration_database_url, app_role=app_role(settings))


def app_role(settings: Settings) -> str | None:
    """The application's PostgreSQL role, when it is not the one migrations run as."""
    app = make_url(settings.resolved_database_url)
    owner = make_url(settings.resolved_migration_database_url)
    if app.get_backend_name() != "postgresql" or app.username == owner.username:
        return None
    return app.username


_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}",
    # The application appends to the audit trail and never rewrites it.
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit_records FROM {role}",
)


def _grant(connection: Connection, role: str) -> None:
    quoted = connection.dialect.identifier_preparer.quote(role)
    for statement in _GRANTS:
        connection.exec_driver_sql(statement.format(role=quoted))


async def create_app_role(owner_url: str, app_url: str) -> str:
    """Create (or bring back in line) the application's login role: no superuser, no
    BYPASSRLS, owns nothing; the password is the one in `app_url`. Returns its name.
    `upgrade` then grants it the tables."""
    app = make_url(app_url)
    if app.get_backend_name() != "postgresql" or not app.username:
        raise ValueError("the application's database URL must be a PostgreSQL URL with a user")
    if app.username == make_url(owner_url).username:
        raise ValueError("the application must connect as another role than the owner")
    engine = create_engine(owner_url, pool_size=1)
    try:
        async with engine.begin() as connection:
            exists = await connection.scalar(
                text("SELECT count(*) FROM pg_roles WHERE rolname = :name"),
                {"name": app.username},
            )
            verb = "ALTER" if exists else "CREATE"
            statement = await connection.scalar(
                text(
                    f"SELECT format('{verb} ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOBYPASSRLS "
                    "NOCREATEDB NOCREATEROLE NOREPLICATION', "
                    "CAST(:name AS text), CAST(:password AS text))"
                ),
                {"name": app.username, "password": app.password or ""},
            )
            await connection.exec_driver_sql(str(statement))
            database = await connection.scalar(text("SELECT current_database()"))
            await connection.run_sync(
                lambda conn: conn.exec_driver_sql(
                    "GRANT CONNECT ON DATABASE {} TO {}".format(
                        *map(conn.dialect.identifier_preparer.quote, (database, app.username))
                    )
                )
            )
    finally:
        await engine.dispose()
    return str(app.username)


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
