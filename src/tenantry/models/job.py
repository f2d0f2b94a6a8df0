"""A unit of background work: the durable queue's row.

`vtime` is the job's start tag in start-time fair queuing: claims go in
(priority, vtime) order, and each tenant's tags advance on their own clock
(`JobTenantClock`), so tenants are served round-robin however many jobs one
of them has queued. See tenantry.worker.queue.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, JsonDocument, UtcDateTime


class JobStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ADMITTED = "submitted_by IS NOT NULL AND status IN ('PENDING', 'PROCESSING')"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    queue: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(128))
    payload: Mapped[Any] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    vtime: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any | None] = mapped_column(JsonDocument)
    # "<tenant or ->:<kind>:<idempotency key>": one column makes the triple unique
    # on both backends (a composite with a NULL tenant would never conflict).
    dedupe_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    # Who enqueued it through the jobs API (a user or key id); NULL for the platform's
    # own work. Only submitted jobs count against the admission caps.
    submitted_by: Mapped[str | None] = mapped_column(String(40))
    # The trace of the request (or job) that enqueued it: its logs and events carry it on.
    trace_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        # Claim order over pending jobs only: the index stays as small as the backlog.
        Index(
            "ix_jobs_claim_order",
            "priority",
            "vtime",
            postgresql_where=text("status = 'PENDING'"),
            sqlite_where=text("status = 'PENDING'"),
        ),
        Index(
            "ix_jobs_lease",
            "lease_expires_at",
            postgresql_where=text("status = 'PROCESSING'"),
            sqlite_where=text("status = 'PROCESSING'"),
        ),
        Index("ix_jobs_tenant_status", "tenant_id", "status"),
        # Admission counts what is in flight of the submitted jobs: a small index.
        Index(
            "ix_jobs_admitted",
            "tenant_id",
            "kind",
            postgresql_where=text(ADMITTED),
            sqlite_where=text(ADMITTED),
        ),
        Index(
            "ix_jobs_submitted",
            "tenant_id",
            "created_at",
            postgresql_where=text("submitted_by IS NOT NULL"),
            sqlite_where=text("submitted_by IS NOT NULL"),
        ),
        Index("ix_jobs_status_finished", "status", "finished_at"),
    )
