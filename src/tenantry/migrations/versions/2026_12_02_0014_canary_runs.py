"""canary runs: each run's result, for the seven-day launch gate

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "canary_runs",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("failure", sa.String(length=32), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stages", JSON_DOCUMENT, nullable=False),
        sa.Column("breaches", JSON_DOCUMENT, nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
    )
    op.create_index("ix_canary_runs_started", "canary_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("canary_runs")
