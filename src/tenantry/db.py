"""Database engines and sessions: one transaction per unit of work, committed by its owner.

A request's session is opened and committed by the `DbSession` dependency;
services only flush. A session can be opened for a tenant: on PostgreSQL that
sets `app.tenant_id` for the transaction (`set_config(..., true)`), which the
row-level security policies read.

SQLite runs in WAL mode with `synchronous=FULL` (what we acknowledged is on
disk), foreign keys on and a busy timeout, through the dialects of
tenantry.sqlite_inline: statements on the event loop, `BEGIN IMMEDIATE` and
`COMMIT` awaited on a thread. Its reads go through a second engine whose
`query_only` connections never begin a transaction.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session

from tenantry import sqlite_inline, tenancy
from tenantry.group_commit import GroupCommit
from tenantry.state import state_of

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A WAL reader waits only in rare cases (another connection recovering the WAL), and it
# waits on the event loop: briefly, then the read fails instead of stalling the process.
SQLITE_READER_BUSY_TIMEOUT_MS = 200


def _configure_sqlite(engine: AsyncEngine, *, reader: bool) -> None:
    pragmas = (
        ("query_only=ON", f"busy_timeout={SQLITE_READER_BUSY_TIMEOUT_MS}")
        if reader
        else ("journal_mode=WAL", "synchronous=FULL", f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Take over transaction control from the driver: BEGIN is the dialect's to send.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("foreign_keys=ON", *pragmas):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


def _sqlite_engine(url: str, *, reader: bool, pool_size: int) -> AsyncEngine:
    driver = sqlite_inline.READER if reader else sqlite_inline.WRITER
    engine = create_async_engine(
        sqlite_inline.url_for(url, driver),
        pool_size=pool_size,
        # A reader's connection is held only while its session is open, which never waits
        # on I/O: as many as requests read at once. Writers queue for the one write lock.
        max_overflow=pool_size * 2 if reader else 0,
        pool_timeout=60,
    )
    _configure_sqlite(engine, reader=reader)
    return engine


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, reader=False, pool_size=pool_size)
    # No pre-ping: a connection the server closed fails its statement, the pool drops it,
    # and the next checkout opens a fresh one; a round trip per checkout costs every request.
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


def create_read_engine(url: str, engine: AsyncEngine, *, pool_size: int) -> AsyncEngine:
    """SQLite: an engine for reads only, which never begin a transaction; elsewhere the
    same engine."""
    if engine.dialect.name != "sqlite":
        return engine
    return _sqlite_engine(url, reader=True, pool_size=pool_size)


class _ReadOnlySyncSession(Session):
    pass


@event.listens_for(_ReadOnlySyncSession, "before_flush")
def _refuse_flush(session: Session, *_: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError("a read session was asked to write")


@event.listens_for(_ReadOnlySyncSession, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError("a read session was asked to write")


class ReadOnlySessionError(RuntimeError):
    """A write reached a read session: a route or service asked for the wrong session."""


class ReadSession(AsyncSession):
    """A session for reads only (`Database.reader`): a write through it raises at once,
    instead of committing by accident or queueing nowhere."""

    sync_session_class = _ReadOnlySyncSession


_AFTER_COMMIT = "tenantry.after_commit"
_DATABASE = "tenantry.database"


class Wakeup:
    """Lets a worker of this process sleep until a commit enqueued something for it."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def bind(self, event: asyncio.Event) -> None:
        self._event = event

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()


class Database:
    """An engine and its session factory; the API holds one in its `AppState`."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine = create_engine(url, pool_size=pool_size)
        self.read_engine = create_read_engine(url, self.engine, pool_size=pool_size)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.wakeup = Wakeup()
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer. Queueing this process's transactions here, first come
        # first served, beats SQLite's busy handler, which sleeps and retries (long tails),
        # and lets queued transactions share a COMMIT.
        self._sqlite_writer = (
            GroupCommit(self.engine, wait_timeout_s=SQLITE_BUSY_TIMEOUT_MS / 1000)
            if self.engine.dialect.name == "sqlite"
            else None
        )

    def listen(self, topic: str, callback: Callable[[Any], None]) -> None:
        """Call `callback(payload)` when a transaction of this process that published on
        `topic` commits (other processes learn of the change by polling)."""
        self._listeners.setdefault(topic, []).append(callback)

    def publish(self, session: AsyncSession | Session, topic: str, payload: Any) -> None:
        for callback in self._listeners.get(topic, ()):
            after_commit(session, functools.partial(callback, payload))

    @classmethod
    def of(cls, session: AsyncSession | Session) -> Database:
        database: Database = session.info[_DATABASE]
        return database

    @asynccontextmanager
    async def session(
        self, *, tenant_id: str | None = None, cross_tenant: str | None = None
    ) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.

        It sees one tenant's rows (`tenant_id`), every tenant's for a named
        purpose (`cross_tenant`), or, with neither, no tenant's: see tenantry.tenancy.
        """
        if self._sqlite_writer is None:
            async with self._sessions() as session, session.begin():
                session.info[_DATABASE] = self
                if tenant_id or cross_tenant:
                    await tenancy.scope(session, tenant_id=tenant_id, cross_tenant=cross_tenant)
                yield session
        else:
            # A savepoint of the writer's open transaction; the unit returns once the
            # group's COMMIT has landed (tenantry.group_commit).
            async with (
                self._sqlite_writer.unit() as connection,
                AsyncSession(
                    bind=connection,
                    join_transaction_mode="create_savepoint",
                    expire_on_commit=False,
                ) as session,
                session.begin(),
            ):
                session.info[_DATABASE] = self
                yield session
        for callback in session.info.pop(_AFTER_COMMIT, ()):
            callback()

    @asynccontextmanager
    async def reader(
        self, *, tenant_id: str | None = None, cross_tenant: str | None = None
    ) -> AsyncIterator[ReadSession]:
        """A session for reads only, which never waits for this process's writer.

        On SQLite each statement is its own snapshot (no BEGIN), run on the event
        loop (tenantry.sqlite_inline); on PostgreSQL it is one transaction, scoped
        like `session`. Read routes use it
        (`DbReader`), and background readers that run beside a request's write
        transaction, such as the auth refresh.
        """
        async with (
            self.read_engine.connect() as connection,
            ReadSession(bind=connection, expire_on_commit=False) as session,
        ):
            session.info[_DATABASE] = self
            if self.is_postgres and (tenant_id or cross_tenant):
                await tenancy.scope(session, tenant_id=tenant_id, cross_tenant=cross_tenant)
            yield session

    async def ping(self) -> None:
        async with self.reader() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._sqlite_writer is not None:
            await self._sqlite_writer.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def insert_for(session: AsyncSession) -> Any:
    """`insert` of the session's dialect, which has `on_conflict_do_nothing/_update`."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@asynccontextmanager
async def unique_or(session: AsyncSession, error: Exception) -> AsyncIterator[None]:
    """Run the block in a savepoint; a unique index that refuses it raises `error` instead, and
    the transaction stays usable (the database decides races on unique things)."""
    try:
        async with session.begin_nested():
            yield
    except IntegrityError:
        raise error from None


def after_commit(session: AsyncSession | Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never on rollback)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _route(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "path", request.url.path))


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Scoped to the tenant in the path (`/v1/tenants/{tenant_id}/…`); elsewhere, no tenant."""
    database = state_of(request).database
    async with database.session(tenant_id=request.path_params.get("tenant_id")) as session:
        yield session


async def _request_reader(request: Request) -> AsyncIterator[ReadSession]:
    database = state_of(request).database
    async with database.reader(tenant_id=request.path_params.get("tenant_id")) as session:
        yield session


async def _platform_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Cross-tenant, named after the route: for platform routes (signup, sign-in, admin)."""
    database = state_of(request).database
    async with database.session(cross_tenant=f"route {_route(request)}") as session:
        yield session


async def _platform_reader(request: Request) -> AsyncIterator[ReadSession]:
    database = state_of(request).database
    async with database.reader(cross_tenant=f"route {_route(request)}") as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed
# commit becomes an error response instead of a success the database never kept.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
# For routes that only read: no write lock, fewer round trips.
DbReader = Annotated[ReadSession, Depends(_request_reader, scope="function")]
# Platform routes only: never on a /v1/tenants/{tenant_id} route (a test checks).
PlatformSession = Annotated[AsyncSession, Depends(_platform_session, scope="function")]
PlatformReader = Annotated[ReadSession, Depends(_platform_reader, scope="function")]
