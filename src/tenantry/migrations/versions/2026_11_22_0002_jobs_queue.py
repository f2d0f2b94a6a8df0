"""jobs queue: jobs, fair-queuing clocks, queue states, schedules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_tenant_clocks",
        sa.Column("tenant_key", sa.String(40), nullable=False),
        sa.Column("last_vtime", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_key", name=op.f("pk_job_tenant_clocks")),
    )
    # The queue's virtual time: the highest fair-queuing tag claimed so far.
    op.execute("INSERT INTO job_tenant_clocks (tenant_key, last_vtime) VALUES ('*', 0)")
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("vtime", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("worker_id", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("result", JSON_DOCUMENT, nullable=True),
        sa.Column("dedupe_key", sa.String(400), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_jobs_dedupe_key")),
    )
    pending = sa.text("status = 'PENDING'")
    processing = sa.text("status = 'PROCESSING'")
    op.create_index(
        "ix_jobs_claim_order",
        "jobs",
        ["priority", "vtime"],
        postgresql_where=pending,
        sqlite_where=pending,
    )
    op.create_index(
        "ix_jobs_lease",
        "jobs",
        ["lease_expires_at"],
        postgresql_where=processing,
        sqlite_where=processing,
    )
    op.create_index("ix_jobs_status_finished", "jobs", ["status", "finished_at"])
    op.create_index("ix_jobs_tenant_status", "jobs", ["tenant_id", "status"])
    op.create_table(
        "queue_states",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_queue_states")),
    )
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("cron", sa.String(128), nullable=False),
        sa.Column("next_run_at", TIMESTAMP, nullable=False),
        sa.Column("last_run_at", TIMESTAMP, nullable=True),
        sa.Column("last_job_id", sa.String(40), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedules")),
    )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("queue_states")
    op.drop_table("jobs")
    op.drop_table("job_tenant_clocks")
