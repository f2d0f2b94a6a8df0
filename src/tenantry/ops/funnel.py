"""The activation funnel: how many got how far, from the events and the rows they describe.

Every figure leaves the canary's traffic out (`synthetic`). Stage counts and the series come
from the hourly rollup (`tenantry.event.counts`); percentiles and acceptance are range scans
of indexes made for them (`ix_signup_sessions_provisioned`, `ix_invitations_created`), so a
month of a large history answers in well under a second.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.errors import ValidationFailed
from tenantry.event import counts
from tenantry.event.service import FUNNEL_STAGES
from tenantry.models import Invitation, InvitationStatus, SignupSession

STAGES = FUNNEL_STAGES
ACCEPTANCE_WINDOW = timedelta(hours=72)
LONGEST_WINDOW = timedelta(days=366)


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def step(self) -> timedelta:
        return timedelta(hours=1) if self is Bucket.HOUR else timedelta(days=1)

    def floor(self, moment: datetime) -> datetime:
        moment = moment.replace(minute=0, second=0, microsecond=0)
        return moment.replace(hour=0) if self is Bucket.DAY else moment


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def checked(cls, since: datetime, until: datetime) -> Window:
        if since >= until:
            raise ValidationFailed(
                "The window is empty", errors=[{"field": "since", "message": "not before until"}]
            )
        if until - since > LONGEST_WINDOW:
            raise ValidationFailed(
                "The window is too long",
                errors=[{"field": "since", "message": "at most 366 days before until"}],
            )
        return cls(since, until)


def seconds_between(dialect: Dialect, start: Any, end: Any) -> ColumnElement[Any]:
    if dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


async def stage_counts(session: AsyncSession, window: Window) -> dict[str, int]:
    hourly = await counts.by_hour(session, window.since, window.until, STAGES)
    totals: Counter[str] = Counter()
    for (_, type_), n in hourly.items():
        totals[type_] += n
    return {stage: totals[stage] for stage in STAGES}


def _percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile: a value that was measured, not an interpolation."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def provisioning_ms(session: AsyncSession, window: Window) -> dict[str, float | None]:
    """From verification (the user starts waiting) to the tenant ready, of runs ended in it."""
    dialect = session.get_bind().dialect
    took = seconds_between(dialect, SignupSession.verified_at, SignupSession.provisioned_at)
    query = (
        select(took)
        .where(
            SignupSession.provisioned_at >= window.since,
            SignupSession.provisioned_at < window.until,
            SignupSession.synthetic == false(),
            SignupSession.verified_at.is_not(None),
        )
        .order_by(took)
    )
    durations = [float(s) * 1000 for s in (await session.execute(query)).scalars()]
    if not durations:
        return {"p50": None, "p95": None}
    return {
        "p50": round(_percentile(durations, 0.50), 1),
        "p95": round(_percentile(durations, 0.95), 1),
    }


async def invite_acceptance(
    session: AsyncSession, settings: Settings, window: Window
) -> float | None:
    """Of the invitations sent in the window, the share accepted within 72 hours of sending."""
    dialect = session.get_bind().dialect
    canary = Invitation.email.like(f"%@{settings.canary_email_domain.lower()}")
    sent = (
        Invitation.created_at >= window.since,
        Invitation.created_at < window.until,
        ~canary,
    )
    in_time = (Invitation.status == InvitationStatus.ACCEPTED) & (
        seconds_between(dialect, Invitation.created_at, Invitation.ended_at)
        <= ACCEPTANCE_WINDOW.total_seconds()
    )
    query = select(func.count(), func.count().filter(in_time)).where(*sent)
    total, accepted = (await session.execute(query)).one()
    return round(accepted / total, 4) if total else None


async def series(session: AsyncSession, window: Window, bucket: Bucket) -> list[dict[str, Any]]:
    """Signups started and tenants provisioned per bucket, every bucket of the window listed."""
    started, provisioned = STAGES[0], STAGES[2]
    hourly = await counts.by_hour(session, window.since, window.until, (started, provisioned))
    buckets: Counter[tuple[datetime, str]] = Counter()
    for (hour, type_), n in hourly.items():
        buckets[bucket.floor(hour), type_] += n
    rows = []
    start = bucket.floor(window.since)
    while start < window.until:
        rows.append(
            {
                "start": start.isoformat(),
                "signups_started": buckets[start, started],
                "tenants_provisioned": buckets[start, provisioned],
            }
        )
        start += bucket.step
    return rows


async def report(
    session: AsyncSession, settings: Settings, window: Window, bucket: Bucket = Bucket.HOUR
) -> dict[str, Any]:
    counts = await stage_counts(session, window)
    first = counts[STAGES[0]]
    return {
        "since": window.since.astimezone(UTC).isoformat(),
        "until": window.until.astimezone(UTC).isoformat(),
        "stages": [
            {"type": stage, "count": n, "conversion": round(n / first, 4) if first else None}
            for stage, n in counts.items()
        ],
        "invite_acceptance_72h": await invite_acceptance(session, settings, window),
        "provisioning_ms": await provisioning_ms(session, window),
        "series": await series(session, window, bucket),
    }
