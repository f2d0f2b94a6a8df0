"""Funnel benchmark: a 30-day funnel report over a year of history, 10 million events
(FUNNEL_EVENTS to change it), 200,000 signups and 200,000 invitations, on SQLite and on
PostgreSQL; against the same stage counts read by a full scan of the events table (what
the report would cost without the hourly rollup and its index), measured in the same run.

The history is written by SQL (generate_series, a recursive CTE) in one statement per
table; 2 % of the events are a canary's, which the report leaves out.
"""
# The statements are built from this module's constants only, never from input.
# ruff: noqa: S608

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry import schema
from tenantry.config import Settings
from tenantry.db import Database
from tenantry.kit.clock import utcnow
from tenantry.ops import funnel

EVENTS = int(os.environ.get("FUNNEL_EVENTS", "10000000"))
ROWS = 200_000
YEAR_S = 365 * 86400
REPEATS = 5

# An event's type by n % 100: roughly how often each happens, and other traffic besides.
TYPE_OF = """CASE
  WHEN n % 100 < 30 THEN 'activation.SignupStarted'
  WHEN n % 100 < 50 THEN 'activation.EmailVerified'
  WHEN n % 100 < 65 THEN 'activation.TenantProvisioned'
  WHEN n % 100 < 75 THEN 'activation.InvitationCreated'
  WHEN n % 100 < 82 THEN 'activation.InvitationAccepted'
  WHEN n % 100 < 89 THEN 'activation.ActivationCompleted'
  ELSE 'job.Submitted' END"""

# The hourly rollup, as the application's events.record() writes it (already folded).
COUNTS_FILL = """INSERT INTO event_counts (hour, type, n)
    SELECT {hour}, type, count(*) FROM events
    WHERE NOT synthetic AND type LIKE 'activation.%' GROUP BY 1, 2"""

POSTGRES_FILL = [
    f"""INSERT INTO events (id, type, occurred_at, data, synthetic)
    SELECT 'evt_' || n, {TYPE_OF}, now() - n * {YEAR_S / EVENTS} * interval '1 second', '{{}}',
           n % 50 = 0
    FROM generate_series(1, {EVENTS}) AS n""",
    f"""INSERT INTO signup_sessions (id, status, org_name, slug, email, plan, failed_attempts,
        codes_sent, expires_at, verified_at, provisioned_at, created_at, updated_at, synthetic)
    SELECT 'ses_' || n, 'PROVISIONED', 'Org', 's' || n, 'f' || n || '@example.com', 'starter',
           0, 1, now(), at - (500 + n % 2500) * interval '1 millisecond', at, at, at, false
    FROM (SELECT n, now() - (n * 157 % {YEAR_S}) * interval '1 second' AS at
          FROM generate_series(1, {ROWS}) AS n) AS s""",
    """INSERT INTO tenants (id, slug, name, plan, status, settings, created_at, updated_at)
    VALUES ('ten_bench', 'bench', 'Bench', 'starter', 'active', '{}', now(), now())""",
    f"""INSERT INTO invitations (id, tenant_id, email, role, status, token_hash, invited_by,
        created_at, expires_at, ended_at)
    SELECT 'inv_' || n, 'ten_bench', 'i' || n || '@example.com', 'member',
           CASE WHEN n % 3 = 0 THEN 'pending' ELSE 'accepted' END, 'h' || n, 'usr_bench',
           at, at + interval '72 hours',
           CASE WHEN n % 3 = 0 THEN NULL ELSE at + (n % 100) * interval '1 hour' END
    FROM (SELECT n, now() - (n * 131 % {YEAR_S}) * interval '1 second' AS at
          FROM generate_series(1, {ROWS}) AS n) AS s""",
    COUNTS_FILL.format(
        hour="date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    ),
    "ANALYZE",
    "VACUUM",
]


def _sqlite_series(count: int) -> str:
    return f"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count})"


def _sqlite_at(seconds_ago: str) -> str:
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', (-({seconds_ago})) || ' seconds')"


SQLITE_FILL = [
    f"""INSERT INTO events (id, type, occurred_at, data, synthetic)
    {_sqlite_series(EVENTS)}
    SELECT 'evt_' || n, {TYPE_OF}, {_sqlite_at(f"n * {YEAR_S / EVENTS}")}, '{{}}', n % 50 = 0
    FROM s""",
    f"""INSERT INTO signup_sessions (id, status, org_name, slug, email, plan, failed_attempts,
        codes_sent, expires_at, verified_at, provisioned_at, created_at, updated_at, synthetic)
    {_sqlite_series(ROWS)}
    SELECT 'ses_' || n, 'PROVISIONED', 'Org', 's' || n, 'f' || n || '@example.com', 'starter',
           0, 1, {_sqlite_at("0")},
           {_sqlite_at(f"n * 157 % {YEAR_S} + (500 + n % 2500) / 1000.0")},
           {_sqlite_at(f"n * 157 % {YEAR_S}")}, {_sqlite_at("0")}, {_sqlite_at("0")}, 0
    FROM s""",
    """INSERT INTO tenants (id, slug, name, plan, status, settings, created_at, updated_at)
    VALUES ('ten_bench', 'bench', 'Bench', 'starter', 'active', '{}',
            datetime('now'), datetime('now'))""",
    f"""INSERT INTO invitations (id, tenant_id, email, role, status, token_hash, invited_by,
        created_at, expires_at, ended_at)
    {_sqlite_series(ROWS)}
    SELECT 'inv_' || n, 'ten_bench', 'i' || n || '@example.com', 'member',
           CASE WHEN n % 3 = 0 THEN 'pending' ELSE 'accepted' END, 'h' || n, 'usr_bench',
           {_sqlite_at(f"n * 131 % {YEAR_S}")}, {_sqlite_at(f"n * 131 % {YEAR_S} - 259200")},
           CASE WHEN n % 3 = 0 THEN NULL ELSE {_sqlite_at(f"n * 131 % {YEAR_S} - n % 100 * 3600")}
           END
    FROM s""",
    COUNTS_FILL.format(hour="substr(occurred_at, 1, 13) || ':00:00.000000'"),
    "ANALYZE",
]

# The stage counts with the index out of the way: every row of the table read.
FULL_SCAN = {
    "sqlite": "SELECT type, count(*) FROM events NOT INDEXED WHERE synthetic = 0"
    " AND occurred_at >= :since AND occurred_at < :until GROUP BY type",
    "postgresql": "SELECT type, count(*) FROM events WHERE synthetic = false"
    " AND occurred_at >= :since AND occurred_at < :until GROUP BY type",
}
POSTGRES_NO_INDEX = [
    "SET LOCAL enable_indexscan = off",
    "SET LOCAL enable_indexonlyscan = off",
    "SET LOCAL enable_bitmapscan = off",
]


@dataclass
class FunnelRow:
    backend: str
    fill_s: float
    window_events: int
    report_ms: float
    full_scan_ms: float


async def _median_ms(action: Callable[[], Awaitable[object]]) -> float:
    await action()  # warm the cache: the report is read repeatedly by people and panels
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def measure(backend: str, url: str) -> FunnelRow:
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    await schema.migrate(settings)
    database = Database(url, pool_size=2)
    started = time.perf_counter()
    async with database.session() as session:
        for statement in SQLITE_FILL if backend == "sqlite" else POSTGRES_FILL:
            if statement == "VACUUM":
                continue  # outside the transaction, below
            await session.execute(text(statement))
    if backend != "sqlite":
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE events"))
    fill_s = time.perf_counter() - started
    until = utcnow()
    window = funnel.Window(until - timedelta(days=30), until)

    async def report() -> object:
        async with database.session() as session:
            return await funnel.report(session, settings, window)

    async def full_scan() -> object:
        async with database.session() as session:
            return await _full_scan(session, backend, window)

    try:
        async with database.session() as session:
            counts = await funnel.stage_counts(session, window)
        return FunnelRow(
            backend,
            fill_s,
            sum(counts.values()),
            await _median_ms(report),
            await _median_ms(full_scan),
        )
    finally:
        await database.dispose()


async def _full_scan(session: AsyncSession, backend: str, window: funnel.Window) -> object:
    if backend != "sqlite":
        for setting in POSTGRES_NO_INDEX:
            await session.execute(text(setting))
    dialect = "sqlite" if backend == "sqlite" else "postgresql"
    since, until = window.since, window.until
    if backend == "sqlite":  # SQLite stores naive UTC text
        since, until = since.replace(tzinfo=None), until.replace(tzinfo=None)
    params = {"since": since, "until": until}
    return (await session.execute(text(FULL_SCAN[dialect]), params)).all()


def run(backend: str, url: str) -> FunnelRow:
    return asyncio.run(measure(backend, url))


def table(rows: list[FunnelRow]) -> str:
    lines = [
        "### Funnel",
        "",
        f"A 30-day `funnel.report` over {EVENTS:,} events in a year, {ROWS:,} signups and "
        f"{ROWS:,} invitations; median of {REPEATS} after one warm-up; reference: the same "
        "stage counts by a full scan of the events table.",
        "",
        "| backend | fill s | events in window | report ms | full scan ms | report vs scan |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ratio = row.full_scan_ms / row.report_ms if row.report_ms else 0.0
        lines.append(
            f"| {row.backend} | {row.fill_s:.0f} | {row.window_events:,} | "
            f"{row.report_ms:.0f} | {row.full_scan_ms:.0f} | {ratio:.1f}x faster |"
        )
    return "\n".join(lines)
