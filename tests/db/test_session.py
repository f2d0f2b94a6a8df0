"""Sessions: one transaction per unit of work, the tenant setting, SQLite's durability pragmas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from tenantry.app import create_app
from tenantry.db import Database, DbSession, ReadOnlySessionError
from tenantry.models import Tenant
from tests.conftest import AppFactory, make_settings
from tests.fixtures.databases import APP_ROLE


@pytest.fixture
async def database(owner_database_url: str) -> AsyncIterator[Database]:
    database = Database(owner_database_url)
    async with database.session() as session:
        await session.execute(
            text("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
        )
        if database.is_postgres:  # created after migrations: grant it like they would
            await session.execute(text(f"GRANT ALL ON probe TO {APP_ROLE}"))
    yield database
    await database.dispose()


async def count(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM probe"))).scalar_one())


class TestUnitOfWork:
    async def test_commits_when_the_block_ends(self, database: Database) -> None:
        async with database.session() as session:
            await session.execute(text("INSERT INTO probe (id, note) VALUES (1, 'a')"))
        assert await count(database) == 1

    async def test_rolls_back_when_the_block_raises(self, database: Database) -> None:
        with pytest.raises(RuntimeError):
            async with database.session() as session:
                await session.execute(text("INSERT INTO probe (id, note) VALUES (1, 'a')"))
                raise RuntimeError("boom")
        assert await count(database) == 0

    async def test_concurrent_writers_all_land(self, database: Database) -> None:
        async def write(i: int) -> None:
            async with database.session() as session:
                current = (await session.execute(text("SELECT count(*) FROM probe"))).scalar_one()
                await session.execute(
                    text("INSERT INTO probe (id, note) VALUES (:i, :n)"),
                    {"i": i, "n": str(current)},
                )

        await asyncio.gather(*(write(i) for i in range(30)))
        assert await count(database) == 30


class TestRequestSession:
    async def test_failed_request_writes_nothing_and_a_good_one_commits(
        self, client_for: AppFactory, database: Database, database_url: str, tmp_path: Path
    ) -> None:
        app = create_app(make_settings(tmp_path, database_url=database_url))

        @app.post("/probe/{row_id}")
        async def write(row_id: int, session: DbSession) -> dict[str, int]:
            await session.execute(
                text("INSERT INTO probe (id, note) VALUES (:i, 'n')"), {"i": row_id}
            )
            if row_id == 1:
                raise RuntimeError("after the write")
            return {"id": row_id}

        async with client_for(app=app) as client:
            assert (await client.post("/probe/1")).status_code == 500
            assert (await client.post("/probe/2")).status_code == 200
        assert await count(database) == 1


@pytest.mark.parametrize("backend", ["postgres"])
class TestTenantSetting:
    async def test_set_for_the_transaction_only(self, database: Database) -> None:
        query = text("SELECT current_setting('app.tenant_id', true)")
        async with database.session(tenant_id="ten_a") as session:
            assert (await session.execute(query)).scalar_one() == "ten_a"
        async with database.session() as session:
            assert (await session.execute(query)).scalar_one() in (None, "")


@pytest.mark.parametrize("backend", ["sqlite"])
class TestSqlitePragmas:
    async def test_wal_full_sync_foreign_keys(self, database: Database) -> None:
        async with database.session() as session:
            pragma = lambda name: session.execute(text(f"PRAGMA {name}"))  # noqa: E731
            assert (await pragma("journal_mode")).scalar_one() == "wal"
            assert (await pragma("synchronous")).scalar_one() == 2  # FULL
            assert (await pragma("foreign_keys")).scalar_one() == 1
            assert (await pragma("busy_timeout")).scalar_one() >= 1000


async def test_commit_failure_is_not_reported_as_success(
    client_for: AppFactory, database_url: str, tmp_path: Path
) -> None:
    """The commit runs before the response: a deferred constraint failing at COMMIT is an error."""
    app = create_app(make_settings(tmp_path, database_url=database_url))

    @app.post("/probe-deferred")
    async def deferred(session: DbSession) -> dict[str, str]:
        await session.execute(text("CREATE TABLE parent (id integer primary key)"))
        await session.execute(
            text(
                "CREATE TABLE child (id integer primary key, parent_id integer "
                "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await session.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 99)"))
        return {"ok": "yes"}

    async with client_for(app=app) as client:
        response = await client.post("/probe-deferred")
    assert response.status_code == 500


class TestReadSession:
    async def test_a_write_through_a_read_session_is_refused(self, database: Database) -> None:
        async with database.reader() as session:
            with pytest.raises(ReadOnlySessionError):
                await session.execute(update(Tenant).values(name="x"))
            session.add(Tenant(id="ten_x", slug="x", name="X", plan="starter", status="active"))
            with pytest.raises(ReadOnlySessionError):
                await session.flush()
            session.expunge_all()
            assert (await session.execute(select(Tenant))).all() == []
