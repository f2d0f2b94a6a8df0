"""signup sessions: progressed_at (the run's last sign of life), and one run per email

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Verified sessions whose run may still make their email a tenant's owner.
EMAIL_IN_FLIGHT = sa.text("status IN ('EMAIL_VERIFIED', 'PROVISIONING', 'REVIEW_REQUIRED')")


def upgrade() -> None:
    op.add_column(
        "signup_sessions",
        sa.Column("progressed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_signup_sessions_email_in_flight",
        "signup_sessions",
        ["email"],
        unique=True,
        postgresql_where=EMAIL_IN_FLIGHT,
        sqlite_where=EMAIL_IN_FLIGHT,
    )


def downgrade() -> None:
    op.drop_index("uq_signup_sessions_email_in_flight", table_name="signup_sessions")
    op.drop_column("signup_sessions", "progressed_at")
