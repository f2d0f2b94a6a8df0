"""The deployment's operators (the console's users) and their console sign-ins.

A console session is a persisted flow (Ory Kratos' shape): `pending` with a mailed code's
digest, `active` once the code is right (its cookie's digest set), `ended` by signing out,
by too many wrong codes, or by time.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class OperatorRole(StrEnum):
    ADMIN = "admin"  # sees and acts
    SUPPORT = "support"  # sees


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConsoleSessionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # NULL for an address that is no operator: the flow looks the same, no code is sent.
    operator_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("operators.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str | None] = mapped_column(String(64))
    failed_attempts: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
