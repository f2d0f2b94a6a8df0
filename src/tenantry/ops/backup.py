"""Backups: `tenantry backup FILE`, `backup --verify FILE` and `restore FILE [--force]`.

SQLite: the online backup API copies the database in one step from a read
snapshot, so a backup taken while `tenantry up` serves writes holds every
transaction committed before it began and none half-done. PostgreSQL:
`pg_dump -Fc` (one snapshot, every table, the policies and grants with them)
and `pg_restore`, run as the migration role. `--verify` opens the backup and
reports its schema revision and row counts without touching the database.
"""

from __future__ import annotations

import glob
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from tenantry.schema import head_revisions


class BackupFailed(RuntimeError):
    """A backup, restore or check that cannot be done; the message says why."""


@dataclass
class Verified:
    path: str
    revision: str | None
    current: bool  # the revision is the code's head
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.revision is not None and "tenants" in self.rows


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise BackupFailed(f"{url} names no database file")
    return Path(database)


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as libpq reads it (no driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _client(name: str) -> str:
    if found := shutil.which(name):
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise BackupFailed(f"{name} is not installed (Debian: postgresql-client)")
    return candidates[-1]


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupFailed(f"{Path(command[0]).name} failed: {done.stderr.strip()[:500]}")
    return done.stdout


def backup(url: str, target: Path) -> None:
    """Write a backup of the database at `url` (the migration URL: the tables' owner)."""
    if target.exists():
        raise BackupFailed(f"{target} exists; choose a new file")
    if url.startswith("sqlite"):
        source = sqlite3.connect(_sqlite_path(url))
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)  # all pages in one step: one consistent snapshot
        finally:
            destination.close()
            source.close()
        return
    _run([_client("pg_dump"), "--format=custom", f"--file={target}", _libpq(url)])


def has_tables(url: str) -> bool:
    """Whether the database at `url` holds Tenantry's tables (a restore would replace them)."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if not path.exists():
            return False
        with sqlite3.connect(path) as connection:
            query = "SELECT count(*) FROM sqlite_master WHERE name = 'tenants'"
            return bool(connection.execute(query).fetchone()[0])
    query = "SELECT count(*) FROM pg_tables WHERE tablename = 'tenants'"
    return _run([_client("psql"), "-tAc", query, _libpq(url)]).strip() != "0"


def restore(url: str, source: Path) -> None:
    """Replace the database at `url` with the backup's contents."""
    if not verify(source).ok:
        raise BackupFailed(f"{source} is not a Tenantry backup")
    if url.startswith("sqlite"):
        backup_db = sqlite3.connect(source)
        live = sqlite3.connect(_sqlite_path(url))
        try:
            backup_db.backup(live)
        finally:
            live.close()
            backup_db.close()
        return
    command = [_client("pg_restore"), "--clean", "--if-exists", "--single-transaction"]
    _run([*command, f"--dbname={_libpq(url)}", str(source)])


def verify(source: Path) -> Verified:
    """Open the backup: its schema revision and each table's row count."""
    if not source.is_file():
        raise BackupFailed(f"{source} is not a file")
    if source.read_bytes()[:16] == b"SQLite format 3\x00":
        return _verify_sqlite(source)
    return _verify_dump(source)


def _verified(source: Path, revision: str | None, rows: dict[str, int]) -> Verified:
    return Verified(str(source), revision, revision in head_revisions(), rows)


def _verify_sqlite(source: Path) -> Verified:
    connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        if connection.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupFailed(f"{source} fails SQLite's integrity check")
        names = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        rows = {
            name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # noqa: S608
            for (name,) in names
        }
        revision = None
        if "alembic_version" in rows:
            found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = found[0] if found else None
    finally:
        connection.close()
    return _verified(source, revision, rows)


_COPY = re.compile(r"^COPY public\.(\w+) ")


def _verify_dump(source: Path) -> Verified:
    """A custom-format dump read back as SQL by pg_restore: the COPY blocks' lines counted."""
    script = _run([_client("pg_restore"), "--data-only", "--file=-", str(source)])
    rows: dict[str, int] = {}
    revision: str | None = None
    table: str | None = None
    for line in script.splitlines():
        if table is None:
            if match := _COPY.match(line):
                table = match.group(1)
                rows[table] = 0
        elif line == "\\.":
            table = None
        else:
            rows[table] += 1
            if table == "alembic_version":
                revision = line.strip()
    return _verified(source, revision, rows)
