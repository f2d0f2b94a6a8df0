"""The hourly rollup of funnel events (`event_counts`): read it, fold it.

A window's counts are the rollup's for the hours it covers whole, plus the events of the
partial hours at its edges, read from `ix_events_funnel`. Folding is an optimisation only:
a count is right however many rows its hour has.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.clock import utcnow
from tenantry.models import Event, EventCount

HOUR = timedelta(hours=1)
FOLD_BACK = timedelta(days=2)  # late events for older hours stay unfolded, still counted


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def _hour_text(session: AsyncSession, column: Any) -> ColumnElement[Any]:
    """An event's hour as `YYYY-MM-DD HH` (SQLite stores UTC text)."""
    if session.get_bind().dialect.name == "postgresql":
        at_utc = column.op("AT TIME ZONE")(literal_column("'UTC'"))
        return func.to_char(at_utc, "YYYY-MM-DD HH24")
    return func.substr(column, 1, 13)


async def _edge_events(
    session: AsyncSession, since: datetime, until: datetime, types: tuple[str, ...]
) -> Counter[tuple[datetime, str]]:
    hour = _hour_text(session, Event.occurred_at).label("hour")
    query = (
        select(hour, Event.type, func.count())
        .where(
            Event.type.in_(types),
            Event.synthetic == false(),
            Event.occurred_at >= since,
            Event.occurred_at < until,
        )
        .group_by(hour, Event.type)
    )
    rows = (await session.execute(query)).all()
    parse = "%Y-%m-%d %H%z"
    return Counter({(datetime.strptime(f"{h}+0000", parse), t): int(n) for h, t, n in rows})


async def by_hour(
    session: AsyncSession, since: datetime, until: datetime, types: tuple[str, ...]
) -> Counter[tuple[datetime, str]]:
    """Real (not synthetic) events of `types` in [since, until), by (hour start, type)."""
    whole_from, whole_until = _ceil_hour(since), floor_hour(until)
    if whole_from >= whole_until:
        return await _edge_events(session, since, until, types)
    query = (
        select(EventCount.hour, EventCount.type, func.sum(EventCount.n))
        .where(
            EventCount.type.in_(types),
            EventCount.hour >= whole_from,
            EventCount.hour < whole_until,
        )
        .group_by(EventCount.hour, EventCount.type)
    )
    counts: Counter[tuple[datetime, str]] = Counter(
        {(hour, type_): int(n) for hour, type_, n in (await session.execute(query)).all()}
    )
    counts.update(await _edge_events(session, since, whole_from, types))
    counts.update(await _edge_events(session, whole_until, until, types))
    return counts


def _folded(rows: Any) -> Any:
    """One row per (hour, type) of `rows`, summed, ready to insert."""
    summed = select(rows.c.hour, rows.c.type, func.sum(rows.c.n)).group_by(rows.c.hour, rows.c.type)
    return insert(EventCount).from_select(["hour", "type", "n"], summed)


async def fold(session: AsyncSession) -> int:
    """Fold each recent hour's rows into one; returns how many rows remain for those hours.

    On PostgreSQL the delete and the insert are one statement, so a row committed meanwhile
    is either folded or left alone, never deleted unsummed; SQLite has one writer at a time,
    and rows written after the fold began have higher ids."""
    since = floor_hour(utcnow()) - FOLD_BACK
    recent = EventCount.hour >= since
    if session.get_bind().dialect.name == "postgresql":
        gone = (
            delete(EventCount)
            .where(recent)
            .returning(EventCount.hour, EventCount.type, EventCount.n)
            .cte("gone")
        )
        await session.execute(_folded(gone))
    else:
        last = (await session.execute(select(func.max(EventCount.id)))).scalar_one() or 0
        older = select(EventCount).where(recent, EventCount.id <= last).subquery()
        await session.execute(_folded(older))
        await session.execute(delete(EventCount).where(recent, EventCount.id <= last))
    remaining = select(func.count()).select_from(EventCount).where(recent)
    return int((await session.execute(remaining)).scalar_one())
