"""Incidents and their status posts: what the public status notice shows and the post-incident
timeline starts from (tenantry.incident)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, JsonDocument, UtcDateTime


class IncidentStatus(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    impact: Mapped[str] = mapped_column(Text)
    tenants: Mapped[list[str] | None] = mapped_column(JsonDocument)  # None: every tenant
    status: Mapped[str] = mapped_column(String(16))
    opened_by: Mapped[str] = mapped_column(String(200))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_incidents_status_opened", "status", "opened_at"),)


class IncidentPost(Base):
    __tablename__ = "incident_posts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    incident_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("incidents.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    posted_by: Mapped[str] = mapped_column(String(200))
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    notified: Mapped[int] = mapped_column(Integer)  # owners mailed about this post
