"""Refused requests (403) of one caller on one route within a second, with their count, kept
for `tenantry denials`; written in batches off the request path (tenantry.auth.denials)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class AuthzDenial(Base):
    __tablename__ = "authz_denials"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(32))
    route: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(64))
    audience: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    count: Mapped[int] = mapped_column(Integer)
