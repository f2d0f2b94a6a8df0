"""SQLite from the event loop: the standard library's driver behind the async engine.

The usual async driver, aiosqlite, runs every cursor call on a thread of its
own and wakes the event loop for each result. A write transaction makes a
dozen such hops, a one-row read three, and under load each hop waits for the
GIL (up to the 5 ms switch interval) while the loop runs other requests: that,
not SQLite, was the cost of every request that touched the database.

These dialects are pysqlite declared async. The async engine runs their calls
inside the greenlet it already uses, where nothing is awaited, so a statement
runs to completion on the loop's thread: a few microseconds for the short
statements of this application, against the page cache. Only what may wait goes
to a thread, awaited:

- `BEGIN IMMEDIATE`, which waits while another process (the CLI, a separate
  worker) holds SQLite's write lock, up to the busy timeout;
- `COMMIT`, whose fsync is what makes the transaction durable.

Readers never BEGIN (each statement is its own WAL snapshot, which never waits
for the writer), so a read session makes no hop at all.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.util.concurrency import await_

READER = "tenantry_reader"
WRITER = "tenantry_writer"


class _Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """The async result asks a cursor to let go of its rows; these are already read."""


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> _Cursor:  # type: ignore[override]
        cursor: _Cursor = super().cursor(factory)
        return cursor


class ReaderDialect(SQLiteDialect_pysqlite):
    """Statements on the loop, no transaction: for `Database.reader`."""

    driver = READER
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # BEGIN and COMMIT run on a pool thread, the rest on the loop's: never at once.
        kwargs["check_same_thread"] = False
        kwargs["factory"] = _Connection
        return args, kwargs


class WriterDialect(ReaderDialect):
    """Statements on the loop; BEGIN IMMEDIATE and COMMIT awaited on a thread."""

    driver = WRITER
    supports_statement_cache = True

    def do_begin(self, dbapi_connection: Any) -> None:
        # IMMEDIATE: SQLite allows one writer, and a deferred transaction that reads and
        # then writes can fail with SQLITE_BUSY instead of waiting its turn.
        await_(asyncio.to_thread(dbapi_connection.execute, "BEGIN IMMEDIATE"))

    def do_commit(self, dbapi_connection: Any) -> None:
        await_(asyncio.to_thread(dbapi_connection.commit))


for _dialect in (ReaderDialect, WriterDialect):
    registry.register(f"sqlite.{_dialect.driver}", __name__, _dialect.__name__)


def url_for(url: str, driver: str) -> URL:
    """The same database file, through one of these dialects."""
    return make_url(url).set(drivername=f"sqlite+{driver}")
