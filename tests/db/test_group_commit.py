"""SQLite's group commit: queued transactions share a COMMIT, none returns before it lands,
and one that fails costs the others nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from tenantry.db import Database
from tests.fixtures import databases


@pytest.fixture
async def database(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(databases.sqlite_copy(sqlite_template, tmp_path))
    async with database.session() as session:
        await session.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY)"))
    yield database
    await database.dispose()


@pytest.fixture
def commits(database: Database) -> list[None]:
    """One entry per COMMIT the writer's connection sends."""
    seen: list[None] = []
    event.listen(database.engine.sync_engine, "commit", lambda _: seen.append(None))
    return seen


async def visible_elsewhere(url: str, row_id: int) -> bool:
    """Read from another connection of another `Database`: only committed rows show."""
    other = Database(url)
    try:
        async with other.reader() as session:
            found = await session.execute(text("SELECT 1 FROM probe WHERE id = :i"), {"i": row_id})
            return found.first() is not None
    finally:
        await other.dispose()


async def test_queued_writers_share_commits_and_return_only_once_durable(
    database: Database, commits: list[None]
) -> None:
    url = str(database.engine.url)
    landed: list[bool] = []

    async def write(i: int) -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO probe (id) VALUES (:i)"), {"i": i})
            await asyncio.sleep(0)  # let the others queue behind this one
        landed.append(await visible_elsewhere(url, i))

    await asyncio.gather(*(write(i) for i in range(40)))
    assert landed == [True] * 40
    assert 1 <= len(commits) < 40


async def test_a_failing_writer_costs_its_group_nothing(
    database: Database, commits: list[None]
) -> None:
    async def write(i: int) -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO probe (id) VALUES (:i)"), {"i": i})
            await asyncio.sleep(0)
            if i % 5 == 0:
                raise RuntimeError("refused")

    results = await asyncio.gather(*(write(i) for i in range(20)), return_exceptions=True)
    failed = [i for i, result in enumerate(results) if isinstance(result, RuntimeError)]
    assert failed == [0, 5, 10, 15]
    async with database.reader() as session:
        stored = sorted((await session.execute(text("SELECT id FROM probe"))).scalars())
    assert stored == [i for i in range(20) if i % 5]
    assert len(commits) < 16


async def test_the_write_lock_is_let_go_once_nobody_writes(database: Database) -> None:
    """Another process (here: another `Database`) can write as soon as this one is idle,
    even when its last transaction failed."""
    with pytest.raises(RuntimeError):
        async with database.session() as session:
            await session.execute(text("INSERT INTO probe (id) VALUES (1)"))
            raise RuntimeError("refused")
    other = Database(str(database.engine.url))
    try:
        async with asyncio.timeout(5), other.session() as session:
            await session.execute(text("INSERT INTO probe (id) VALUES (2)"))
    finally:
        await other.dispose()


async def test_a_writer_that_gives_up_in_line_leaves_no_group_open(database: Database) -> None:
    """A writer queued behind the holder is cancelled as the holder finishes: whichever of
    them ends the group, it commits, and the holder returns."""
    first_in, release = asyncio.Event(), asyncio.Event()
    waiting: list[asyncio.Task[None]] = []

    async def holder() -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO probe (id) VALUES (1)"))
            first_in.set()
            await release.wait()
            asyncio.get_running_loop().call_soon(waiting[0].cancel)

    async def impatient() -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO probe (id) VALUES (2)"))

    holding = asyncio.create_task(holder())
    await first_in.wait()
    waiting.append(asyncio.create_task(impatient()))
    await asyncio.sleep(0.01)  # queued behind the holder
    release.set()
    await asyncio.wait_for(holding, timeout=5)
    assert waiting[0].cancelled()
    assert await visible_elsewhere(str(database.engine.url), 1)
    assert not await visible_elsewhere(str(database.engine.url), 2)
