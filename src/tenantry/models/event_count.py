"""How many funnel events of a type happened in an hour: the funnel's rollup.

Each real funnel event adds a row with `n = 1` in the event's own transaction (an insert,
never an update: concurrent writers contend for no row); `funnel.compact` folds an hour's
rows into one, so a month of any history is a few thousand rows to add up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class EventCount(Base):
    __tablename__ = "event_counts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    hour: Mapped[datetime] = mapped_column(UtcDateTime)  # the hour's start, UTC
    type: Mapped[str] = mapped_column(String(100))
    n: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_event_counts_type_hour", "type", "hour", "n"),)
