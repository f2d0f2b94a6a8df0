"""An append-only record of a state change, written in the transaction that made it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, JsonDocument, UtcDateTime


class Event(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(40))  # the session, job, key… it is about
    trace_id: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    # Canary traffic: kept for the canary's own record, left out of every report.
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)

    __table_args__ = (
        Index("ix_events_tenant_occurred", "tenant_id", "occurred_at"),
        Index("ix_events_type_occurred", "type", "occurred_at"),
        Index("ix_events_subject", "subject_id"),
        Index(
            "ix_events_funnel",
            "type",
            "occurred_at",
            postgresql_where=text("synthetic = false"),
            sqlite_where=text("synthetic = 0"),
        ),
    )
