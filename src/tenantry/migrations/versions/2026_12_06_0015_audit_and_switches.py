"""operators' levers: the audit trail (hash-chained records and their head), switches (flags,
degraded mode), schedules an operator can disable, abuse signals, rate-limit resets and
incidents with their status posts, and which server secret made each integration key's digest

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", JSON_DOCUMENT, nullable=True),
        sa.Column("after", JSON_DOCUMENT, nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("id", name=op.f("uq_audit_records_id")),
    )
    op.create_index("ix_audit_records_occurred", "audit_records", ["occurred_at"])
    op.create_index("ix_audit_records_action", "audit_records", ["action", "occurred_at"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])
    op.create_table(
        "switches",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "abuse_signals",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("network", sa.String(length=64), nullable=False),
        sa.Column("email_domain", sa.String(length=255), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_abuse_signals_occurred_at", "abuse_signals", ["occurred_at"])
    op.create_table(
        "ratelimit_resets",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ratelimit_resets_requested_at", "ratelimit_resets", ["requested_at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("tenants", JSON_DOCUMENT, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_incidents_status_opened", "incidents", ["status", "opened_at"])
    op.create_table(
        "incident_posts",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column(
            "incident_id",
            sa.String(length=40),
            sa.ForeignKey(
                "incidents.id",
                ondelete="CASCADE",
                name=op.f("fk_incident_posts_incident_id_incidents"),
            ),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("posted_by", sa.String(length=200), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified", sa.Integer(), nullable=False),
    )
    op.create_index("ix_incident_posts_incident_id", "incident_posts", ["incident_id"])
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("integration_keys") as batch:
        batch.add_column(sa.Column("secret_key_fp", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("integration_keys") as batch:
        batch.drop_column("secret_key_fp")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("enabled")
    op.drop_table("incident_posts")
    op.drop_table("incidents")
    op.drop_table("ratelimit_resets")
    op.drop_table("abuse_signals")
    op.drop_table("switches")
    op.drop_table("audit_head")
    op.drop_table("audit_records")
