"""provisioning checkpoints; tenant settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provisioning_steps",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("signup_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output", JSON_DOCUMENT, nullable=True),
        sa.ForeignKeyConstraint(
            ["signup_id"],
            ["signup_sessions.id"],
            name=op.f("fk_provisioning_steps_signup_id_signup_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_steps")),
        sa.UniqueConstraint("signup_id", "name", name=op.f("uq_provisioning_steps_signup_id")),
    )
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("settings", JSON_DOCUMENT, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("settings")
    op.drop_table("provisioning_steps")
