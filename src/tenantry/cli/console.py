"""Shared CLI plumbing: Rich for people, `--json` for scripts, exit codes by the contract,
and a database session for commands that act on the data directly."""

from __future__ import annotations

import asyncio
import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.errors import TenantryError
from tenantry.kit.durations import parse_duration
from tenantry.worker.registry import load_task_modules

console = Console()
errors = Console(stderr=True)

EXIT_FINDING = 1  # a check found something, or the operation failed
EXIT_USAGE = 2  # click's own code for bad arguments

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
# Why an operator acts, kept in the audit trail: required for destructive actions.
Reason = Annotated[str, typer.Option(help="Why: kept in the audit trail.")]
OptionalReason = Annotated[str | None, typer.Option(help="Why: kept in the audit trail.")]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


# Who acts, as events and the audit trail record it: the CLI, the login and the host.
OPERATOR = _operator()


def fail(message: str, code: int = EXIT_FINDING) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def duration(text: str) -> timedelta:
    """A duration option (`30s`, `15m`, `2h`, `7d`); anything else is a usage error."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def metrics_text(url: str) -> str:
    """A serving process's /metrics, for the checks that read request metrics."""
    try:
        response = httpx.get(url, timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        fail(f"cannot read metrics from {url}: {exc}")
    return response.text


def with_database(action: Callable[[Database], Awaitable[T]]) -> T:
    """Run `action` against the configured database; domain errors exit 1 with their detail."""

    async def main() -> T:
        settings = Settings()
        load_task_modules(settings)  # what the action enqueues (mail, provisioning) must be known
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


def audited(
    action: str,
    target: str,
    act: Callable[[AsyncSession], Awaitable[T]],
    *,
    reason: str | None = None,
    before: Callable[[AsyncSession], Awaitable[dict[str, Any] | None]] | None = None,
    after: Callable[[T], dict[str, Any] | None] | None = None,
) -> T:
    """Run an operator's action and append its audit record in the same transaction: both
    commit, or neither. `before` reads the target's state first; `after` describes the
    result."""

    async def run(session: AsyncSession) -> T:
        prior = await before(session) if before else None
        result = await act(session)
        await trail.record(
            session,
            actor=OPERATOR,
            action=action,
            target=target,
            reason=reason,
            before=prior,
            after=after(result) if after else None,
        )
        return result

    return in_session(run)


def record_action(
    action: str, target: str, *, reason: str | None = None, after: dict[str, Any] | None = None
) -> None:
    """The audit record of an action done outside one transaction (a backup, batched deletes),
    once it is done."""

    async def record(session: AsyncSession) -> None:
        await trail.record(
            session, actor=OPERATOR, action=action, target=target, reason=reason, after=after
        )

    in_session(record)


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
