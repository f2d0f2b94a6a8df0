"""Migrations run on both backends, and drift is detected from revisions and from the models."""

from __future__ import annotations

from sqlalchemy import text

from tenantry import schema
from tenantry.db import Database


async def test_upgrade_reaches_head_and_shows_no_drift(empty_database_url: str) -> None:
    assert await schema.full_drift(empty_database_url) == [
        f"database is at no revision; the code expects {', '.join(sorted(schema.head_revisions()))}"
    ]
    await schema.upgrade(empty_database_url)
    assert await schema.full_drift(empty_database_url) == []
    await schema.upgrade(empty_database_url)  # a second run is a no-op
    assert await schema.full_drift(empty_database_url) == []


async def test_a_table_unknown_to_the_models_is_drift(owner_database_url: str) -> None:
    database = Database(owner_database_url)
    async with database.session() as session:
        await session.execute(text("CREATE TABLE stray (id integer primary key)"))
    await database.dispose()
    drift = await schema.full_drift(owner_database_url)
    assert len(drift) == 1 and "stray" in drift[0]


async def test_revision_drift_is_cheap_and_exact(owner_database_url: str) -> None:
    database = Database(owner_database_url)
    assert await schema.revision_drift(database.engine) == []
    async with database.session() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'elsewhere'"))
    assert "elsewhere" in (await schema.revision_drift(database.engine))[0]
    await database.dispose()
