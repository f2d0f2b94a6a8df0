"""SQLite on a disk that fills up: the request that cannot be written answers a clear 503 and
leaves nothing half-written; once there is room again, the same process writes again."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tenantry.db import Database
from tenantry.models import Event, MailMessage, SignupSession
from tests.conftest import AppFactory, LogCapture, make_settings
from tests.fixtures import databases
from tests.fixtures.signup import from_address, signup_body


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of the test's own (root only: mounting needs it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses another byte."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"\0" * 65536, b"\0"):
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, chunk)
    finally:
        os.close(descriptor)
    return filler


async def rows(database: Database, model: type) -> int:
    async with database.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_full_disk_is_a_clear_503_that_writes_nothing(
    sqlite_template: Path,
    small_disk: Path,
    client_for: AppFactory,
    logs: LogCapture,
    record_property: Callable[[str, object], None],
) -> None:
    url = databases.sqlite_copy(sqlite_template, small_disk)
    settings = make_settings(small_disk / "data", database_url=url)
    database = Database(url)
    try:
        async with client_for(settings) as api:
            before = {m: await rows(database, m) for m in (SignupSession, MailMessage, Event)}
            filler = fill(small_disk)

            refused = await api.post("/v1/signup", json=signup_body(), headers=from_address())
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "DATABASE_UNAVAILABLE"
            assert refused.headers["Retry-After"] == "5"
            (logged,) = logs.events("database_unavailable")
            assert "disk is full" in logged["error"]

            filler.unlink()
            assert {m: await rows(database, m) for m in before} == before, "nothing half-written"
            again = await api.post("/v1/signup", json=signup_body(), headers=from_address())
            assert again.status_code == 201, again.text
            assert await rows(database, SignupSession) == before[SignupSession] + 1
    finally:
        await database.dispose()
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    record_property("faults", "the SQLite disk (a 4 MiB tmpfs) filled to the last byte, then freed")
    record_property("figure", "503 DATABASE_UNAVAILABLE, no row written; 201 once freed")
