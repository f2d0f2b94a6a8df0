"""Group commit for SQLite: this process's write transactions share one COMMIT.

SQLite has one writer, and each COMMIT costs a thread hop and an fsync. Here
the process's transactions still run one at a time, first come first served,
but each as a SAVEPOINT of one SQLite transaction that stays open while more
are queued; one COMMIT, one fsync, then makes the whole group durable.

Durability is unchanged: a unit of work does not return (so no response is
sent, no job outcome is reported) before the COMMIT that holds it has landed.
A unit that raises rolls back to its savepoint and leaves the others intact; a
COMMIT that fails fails every unit of its group, none of which has answered.
A group closes when nobody waits for the writer, or when it is
`MAX_GROUP_AGE_S` old, so a saturated writer still commits every few
milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger(__name__)

MAX_GROUP_AGE_S = 0.005


class GroupCommit:
    def __init__(self, engine: AsyncEngine, *, wait_timeout_s: float) -> None:
        self._engine = engine
        self._wait_timeout_s = wait_timeout_s
        self._lock = asyncio.Lock()
        self._queued = 0  # units waiting for the writer
        self._connection: AsyncConnection | None = None
        self._group: list[asyncio.Future[None]] = []  # units the open transaction holds
        self._opened_at = 0.0
        self._flusher: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[AsyncConnection]:
        """The writer's connection, inside its open transaction, for one unit of work that
        runs as a savepoint; returns once a COMMIT has made the unit durable."""
        loop = asyncio.get_running_loop()
        self._queued += 1
        try:
            async with asyncio.timeout(self._wait_timeout_s):
                await self._lock.acquire()
        except BaseException:
            # The unit before may have left the COMMIT to this one: someone must send it.
            self._flush_later()
            raise
        finally:
            self._queued -= 1
        landed: asyncio.Future[None] | None = None
        try:
            connection = await self._open(loop.time())
            try:
                yield connection
            except BaseException:
                await self._check_intact(connection)
                raise
            landed = loop.create_future()
            self._group.append(landed)
        finally:
            try:
                # Otherwise the next in line commits (or, giving up its turn, has it sent).
                if self._queued == 0 or loop.time() - self._opened_at >= MAX_GROUP_AGE_S:
                    await self._end()
            finally:
                self._lock.release()
        if landed is not None:
            await landed

    def _flush_later(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon(), name="group-commit")

    async def _flush_soon(self) -> None:
        await asyncio.sleep(MAX_GROUP_AGE_S)
        async with self._lock:
            await self._end()

    async def _end(self) -> None:
        """Commit what the group holds, or end a transaction that holds nothing (its units
        all failed): SQLite's write lock is not kept while nobody writes."""
        if self._group:
            await self._commit()
        elif self._connection is not None and self._connection.in_transaction():
            await self._connection.rollback()

    async def _open(self, now: float) -> AsyncConnection:
        if self._connection is None:
            self._connection = await self._engine.connect()
        if not self._connection.in_transaction():
            await self._connection.begin()  # BEGIN IMMEDIATE, on a thread (sqlite_inline)
            self._opened_at = now
        return self._connection

    async def _check_intact(self, connection: AsyncConnection) -> None:
        """After a failed unit: SQLite rolls the whole transaction back on some errors (a full
        disk, an I/O error); then the group's earlier units are lost and must fail too."""
        raw = await connection.get_raw_connection()
        if self._group and not raw.driver_connection.in_transaction:  # type: ignore[union-attr]
            await self._fail(RuntimeError("SQLite rolled back the group's transaction"))

    async def _commit(self) -> None:
        group, self._group = self._group, []
        assert self._connection is not None
        try:
            await self._connection.commit()
        except Exception as exc:
            log.error("group_commit_failed", units=len(group), error=str(exc))
            self._group = group
            await self._fail(exc)
            return
        for landed in group:
            if not landed.done():
                landed.set_result(None)

    async def _fail(self, exc: Exception) -> None:
        """Every unit of the open group fails with `exc`; the connection starts afresh."""
        group, self._group = self._group, []
        for landed in group:
            if not landed.done():
                landed.set_exception(exc)
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.invalidate()

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flusher
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
