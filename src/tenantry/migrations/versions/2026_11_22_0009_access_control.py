"""access control: signing keys, token revocations, denials, submitted jobs

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
ADMITTED = "submitted_by IS NOT NULL AND status IN ('PENDING', 'PROCESSING')"


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("sealed_private_key", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("activated_at", TIMESTAMP, nullable=True),
        sa.Column("deactivated_at", TIMESTAMP, nullable=True),
        sa.Column("verify_until", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_table(
        "token_revocations",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("issued_before", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_revocations")),
        sa.UniqueConstraint("kind", "target", name=op.f("uq_token_revocations_kind")),
    )
    op.create_index(
        "ix_token_revocations_expires_at", "token_revocations", ["expires_at"], unique=False
    )
    op.create_table(
        "auth_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_revision")),
    )
    op.execute("INSERT INTO auth_revision (id, revision) VALUES (1, 0)")
    op.create_table(
        "authz_denials",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("audience", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authz_denials")),
    )
    op.create_index("ix_authz_denials_occurred_at", "authz_denials", ["occurred_at"])
    op.add_column("jobs", sa.Column("submitted_by", sa.String(40), nullable=True))
    op.create_index(
        "ix_jobs_admitted",
        "jobs",
        ["tenant_id", "kind"],
        postgresql_where=sa.text(ADMITTED),
        sqlite_where=sa.text(ADMITTED),
    )
    submitted = sa.text("submitted_by IS NOT NULL")
    op.create_index(
        "ix_jobs_submitted",
        "jobs",
        ["tenant_id", "created_at"],
        postgresql_where=submitted,
        sqlite_where=submitted,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_submitted", table_name="jobs")
    op.drop_index("ix_jobs_admitted", table_name="jobs")
    op.drop_column("jobs", "submitted_by")
    op.drop_table("authz_denials")
    op.drop_table("auth_revision")
    op.drop_table("token_revocations")
    op.drop_table("signing_keys")
