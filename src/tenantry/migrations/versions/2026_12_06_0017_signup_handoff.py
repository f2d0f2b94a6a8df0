"""the hosted signup's hand-off code on signup sessions

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signup_sessions") as batch:
        batch.add_column(sa.Column("handoff_code_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("handoff_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_signup_sessions_handoff_code_hash"), ["handoff_code_hash"]
        )


def downgrade() -> None:
    with op.batch_alter_table("signup_sessions") as batch:
        batch.drop_constraint(op.f("uq_signup_sessions_handoff_code_hash"), type_="unique")
        batch.drop_column("handoff_expires_at")
        batch.drop_column("handoff_code_hash")
