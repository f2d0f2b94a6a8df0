"""One canary run's result, kept 90 days: the launch gate reads the last seven."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, JsonDocument, UtcDateTime


class CanaryRun(Base):
    __tablename__ = "canary_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    failure: Mapped[str | None] = mapped_column(String(32))  # FAIL_<STAGE>
    stage: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    stages: Mapped[dict[str, Any]] = mapped_column(JsonDocument)  # stage -> milliseconds
    breaches: Mapped[list[str]] = mapped_column(JsonDocument)
    origin: Mapped[str] = mapped_column(String(40))  # "schedule", or who ran it from outside

    __table_args__ = (Index("ix_canary_runs_started", "started_at"),)
