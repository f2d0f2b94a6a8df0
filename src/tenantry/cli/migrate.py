"""`tenantry migrate`: apply migrations, or report drift with `--check`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tenantry import schema
from tenantry.cli.console import console, fail
from tenantry.config import Settings
from tenantry.datadir import ensure_data_dir


def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the database differs from the code.")
    ] = False,
) -> None:
    """Apply pending migrations with TENANTRY_MIGRATION_DATABASE_URL (the owner role)."""
    settings = Settings()
    url = settings.resolved_migration_database_url
    if check:
        if drift := asyncio.run(schema.full_drift(url)):
            fail("drift: " + "; ".join(drift))
        console.print("schema is up to date")
        return
    ensure_data_dir(settings)
    asyncio.run(schema.migrate(settings))
    console.print("migrated to " + ", ".join(sorted(schema.head_revisions())))
