"""Each tenant's fair-queuing clock: the last start tag given to one of its jobs."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base


class JobTenantClock(Base):
    __tablename__ = "job_tenant_clocks"

    # The tenant id, or "" for platform jobs (a primary key cannot be NULL).
    tenant_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_vtime: Mapped[int] = mapped_column(BigInteger)
