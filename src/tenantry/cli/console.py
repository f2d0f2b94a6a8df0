"""Shared CLI plumbing: Rich for people, `--json` for scripts, exit codes by the contract,
and a database session for commands that act on the data directly."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import TenantryError

console = Console()
errors = Console(stderr=True)

EXIT_FINDING = 1  # a check found something, or the operation failed
EXIT_USAGE = 2  # click's own code for bad arguments

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in this environment
        return "cli"


# Who acts, as events and reasons record it: the CLI and the login that ran it.
OPERATOR = _operator()


def fail(message: str, code: int = EXIT_FINDING) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def with_database(action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action` against the configured database; domain errors exit 1 with their detail."""

    async def main() -> T:
        settings = Settings()
        database = Database(settings.resolved_database_url, pool_size=2)
        try:
            return await action(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except TenantryError as exc:
        fail(exc.detail)


def in_session(action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `action` in one committed transaction."""

    async def run(database: Database) -> T:
        async with database.session(cross_tenant="cli") as session:
            return await action(session)

    return with_database(run)


def show(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    if as_json:
        print_json(list(rows))
        return
    # Ids are what an operator copies into the next command: never cut them.
    table = Table(title=title)
    for column in columns:
        identifier = column == "id" or column.endswith("_id")
        table.add_column(column, no_wrap=identifier, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
