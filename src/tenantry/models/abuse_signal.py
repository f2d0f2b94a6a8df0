"""Refused and failing clients within a second, with their count, kept for `tenantry abuse
report`; written in batches off the request path (tenantry.ops.abuse)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class AbuseSignal(Base):
    __tablename__ = "abuse_signals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # rate_limited | verification_failed
    detail: Mapped[str] = mapped_column(String(64))  # the limit, or what failed to verify
    address: Mapped[str] = mapped_column(String(64))
    network: Mapped[str] = mapped_column(String(64))  # the address's /24 or /64
    email_domain: Mapped[str | None] = mapped_column(String(255))
    count: Mapped[int] = mapped_column(Integer)


class RateLimitReset(Base):
    """An operator's reset of rate-limit counters: Redis is cleared by the command itself,
    each process's own counters when it sees the row (about a second later)."""

    __tablename__ = "ratelimit_resets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # address | email | all
    value: Mapped[str | None] = mapped_column(String(320))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
