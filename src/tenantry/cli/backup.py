"""`tenantry backup FILE [--verify]` and `tenantry restore FILE [--force]`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tenantry.cli.console import (
    EXIT_FINDING,
    JsonFlag,
    OptionalReason,
    console,
    fail,
    print_json,
    record_action,
    show,
)
from tenantry.config import Settings
from tenantry.ops import backup as backups

FileArgument = Annotated[Path, typer.Argument(help="The backup file.")]


def backup(
    file: FileArgument,
    verify: Annotated[bool, typer.Option("--verify", help="Check an existing backup.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Back the database up to FILE (SQLite online backup; pg_dump -Fc on PostgreSQL), or
    with --verify open FILE and report its schema revision and row counts."""
    try:
        if verify:
            found = backups.verify(file)
        else:
            backups.backup(Settings().resolved_migration_database_url, file)
            found = backups.verify(file)
    except backups.BackupFailed as exc:
        fail(str(exc))
    if as_json:
        print_json({**asdict(found), "ok": found.ok})
    else:
        head = "the code's head" if found.current else "not the code's head: migrate after restore"
        console.print(f"{file}: revision {found.revision} ({head})")
        rows = [{"table": name, "rows": count} for name, count in sorted(found.rows.items())]
        show(rows, ["table", "rows"], as_json=False)
    if not found.ok:
        raise typer.Exit(EXIT_FINDING)
    if not verify:
        record_action("backup.create", str(file.resolve()))


def restore(
    file: FileArgument,
    force: Annotated[bool, typer.Option(help="Replace a database that holds data.")] = False,
    reason: OptionalReason = None,
) -> None:
    """Replace the database with FILE's contents. Stop every server and worker first; a
    database that holds Tenantry's tables is replaced only with --force."""
    url = Settings().resolved_migration_database_url
    try:
        if backups.has_tables(url) and not force:
            fail("the database holds data; stop the service and pass --force to replace it")
        backups.restore(url, file)
    except backups.BackupFailed as exc:
        fail(str(exc))
    record_action("backup.restore", str(file.resolve()), reason=reason)
    console.print(f"restored from {file}; run `tenantry migrate` if the code is newer")
