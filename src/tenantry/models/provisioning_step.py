"""One step of a signup's provisioning run, and its checkpoint."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, JsonDocument, UtcDateTime


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    REVIEW = "review"
    FAILED = "failed"


class ProvisioningStep(Base):
    __tablename__ = "provisioning_steps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    signup_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("signup_sessions.id", ondelete="CASCADE")
    )
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    output: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)

    __table_args__ = (UniqueConstraint("signup_id", "name"),)
