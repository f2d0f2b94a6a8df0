"""The auth revision counter (one row); see tenantry.auth.revision."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base


class AuthRevision(Base):
    __tablename__ = "auth_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    revision: Mapped[int] = mapped_column(BigInteger)
