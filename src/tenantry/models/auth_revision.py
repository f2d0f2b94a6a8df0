"""One counter that every change to signing keys or revocations increments, in its own
transaction: each process polls this single row and reloads only when it moved."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base


class AuthRevision(Base):
    __tablename__ = "auth_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    revision: Mapped[int] = mapped_column(BigInteger)
