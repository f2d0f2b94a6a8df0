"""The first response to a POST with an `Idempotency-Key`, replayed for the same key and body."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, JsonDocument, UtcDateTime


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    # "<scope>:<route>:<key>": the scope is the caller (a tenant, a client address).
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[Any] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
