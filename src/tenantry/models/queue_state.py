"""Operator state of a named queue: paused queues are skipped by every worker's claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class QueueState(Base):
    __tablename__ = "queue_states"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
