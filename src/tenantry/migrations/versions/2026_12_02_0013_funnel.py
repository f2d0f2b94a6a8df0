"""the funnel: synthetic (canary) marks, provisioned_at, window indexes, hourly event counts;
the trace id a job carries from the request that enqueued it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The funnel counts real traffic only; the partial index holds exactly those rows, so a
# window's count per type is an index-only range scan.
REAL_PG = sa.text("synthetic = false")
REAL_SQLITE = sa.text("synthetic = 0")


FUNNEL_TYPES = (
    "'activation.SignupStarted', 'activation.EmailVerified', 'activation.TenantProvisioned',"
    " 'activation.InvitationCreated', 'activation.InvitationAccepted',"
    " 'activation.ActivationCompleted'"
)


def _backfill(hour_of: str) -> str:
    # Built from this module's constants only.
    return (
        "INSERT INTO event_counts (hour, type, n)"  # noqa: S608
        f" SELECT {hour_of}, type, count(*) FROM events"
        f" WHERE type IN ({FUNNEL_TYPES}) GROUP BY 1, 2"
    )


def upgrade() -> None:
    hour_of = (
        "date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        if op.get_bind().dialect.name == "postgresql"
        else "substr(occurred_at, 1, 13) || ':00:00.000000'"
    )
    op.add_column(
        "events",
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_events_funnel",
        "events",
        ["type", "occurred_at"],
        postgresql_where=REAL_PG,
        sqlite_where=REAL_SQLITE,
    )
    op.add_column(
        "signup_sessions",
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "signup_sessions", sa.Column("provisioned_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE signup_sessions SET provisioned_at = ("
        " SELECT min(occurred_at) FROM events"
        " WHERE events.subject_id = signup_sessions.id"
        " AND events.type = 'activation.TenantProvisioned')"
        " WHERE status = 'PROVISIONED'"
    )
    op.create_index("ix_signup_sessions_provisioned", "signup_sessions", ["provisioned_at"])
    op.create_index("ix_invitations_created", "invitations", ["created_at"])
    op.create_table(
        "event_counts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    op.create_index("ix_event_counts_type_hour", "event_counts", ["type", "hour", "n"])
    op.execute(_backfill(hour_of))  # every event so far is real: the canary is new
    op.add_column("jobs", sa.Column("trace_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("trace_id")
    op.drop_table("event_counts")
    op.drop_index("ix_invitations_created", table_name="invitations")
    op.drop_index("ix_signup_sessions_provisioned", table_name="signup_sessions")
    with op.batch_alter_table("signup_sessions") as batch:
        batch.drop_column("provisioned_at")
        batch.drop_column("synthetic")
    op.drop_index("ix_events_funnel", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("synthetic")
