"""`tenantry doctor`: settings, database, migrations, isolation, Redis, mail, clock, signing
keys, queues, switches and password hashing, each with what to do; exit 1 on a failure."""

from __future__ import annotations

import dataclasses

import typer

from tenantry.cli.console import EXIT_FINDING, JsonFlag, print_json, show, with_database
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.ops import doctor as checks


def doctor(as_json: JsonFlag = False) -> None:
    """Check everything this deployment needs; exit 1 if anything fails."""
    settings = Settings()

    async def run(database: Database) -> list[checks.Check]:
        return await checks.examine(settings, database)

    found = with_database(run)
    rows = [dataclasses.asdict(check) for check in found]
    if as_json:
        print_json({"checks": rows})
    else:
        show(rows, ["name", "status", "detail", "action"], as_json=False)
    if any(check.status == checks.FAIL for check in found):
        raise typer.Exit(EXIT_FINDING)
