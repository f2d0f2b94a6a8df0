"""A revocation of access tokens before their expiry: one token (`jti`), or every token of a
subject (user or integration key) or tenant issued at or before `issued_before`.

A row is useless once every token it can match has expired (`expires_at`), and
is deleted then. Each (kind, target) has one row; a later cut-off moves it on.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class RevocationKind(StrEnum):
    JTI = "jti"
    SUBJECT = "subject"
    TENANT = "tenant"
    MEMBER = "member"  # one user's tokens for one tenant: target `tenant_id/user_id`


class TokenRevocation(Base):
    __tablename__ = "token_revocations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    issued_before: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("kind", "target"),)
