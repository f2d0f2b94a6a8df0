"""An operator's switch: a feature flag (on unless a row says off) or degraded mode (off unless
a row says on). Every process reads this table about once a second (tenantry.flag.board)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class Switch(Base):
    __tablename__ = "switches"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
