"""A self-serve signup: a persisted state machine from the first POST to a provisioned tenant.

Transitions live in tenantry.signup.transitions; this row only holds state.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Index, Integer, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.models.base import Base, UtcDateTime


class SignupStatus(StrEnum):
    PENDING_EMAIL_VERIFICATION = "PENDING_EMAIL_VERIFICATION"
    EMAIL_VERIFIED = "EMAIL_VERIFIED"
    PROVISIONING = "PROVISIONING"
    PROVISIONED = "PROVISIONED"
    REVIEW_REQUIRED = "REVIEW_REQUIRED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


# Sessions in these states hold their slug; FAILED and EXPIRED ones let it go.
SLUG_HOLDING = (
    SignupStatus.PENDING_EMAIL_VERIFICATION,
    SignupStatus.EMAIL_VERIFIED,
    SignupStatus.PROVISIONING,
    SignupStatus.REVIEW_REQUIRED,
    SignupStatus.PROVISIONED,
)
_HOLDING_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in SLUG_HOLDING) + ")"
# Verified sessions whose run may still make their email a tenant's owner: one per email.
EMAIL_IN_FLIGHT = (
    SignupStatus.EMAIL_VERIFIED,
    SignupStatus.PROVISIONING,
    SignupStatus.REVIEW_REQUIRED,
)
_EMAIL_IN_FLIGHT_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in EMAIL_IN_FLIGHT) + ")"


class SignupSession(Base):
    __tablename__ = "signup_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    org_name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(40))
    email: Mapped[str] = mapped_column(String(320))  # normalised
    plan: Mapped[str] = mapped_column(String(40))
    promo_code: Mapped[str | None] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    review_reason: Mapped[str | None] = mapped_column(Text)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer)
    codes_sent: Mapped[int] = mapped_column(Integer)
    last_code_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    continuation_hash: Mapped[str | None] = mapped_column(String(64))
    continuation_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The hosted signup's hand-off to the host application: a one-time code's digest,
    # good until `handoff_expires_at` (60 s), spent by `grant_type=authorization_code`.
    handoff_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    handoff_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    client_ip: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The run's last sign of life (verified, started, a step begun, finished or retried):
    # the in-flight deadline counts from here, so a run that progresses is never expired.
    progressed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    provisioned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # A canary's signup (its address is at the canary domain): out of every report.
    synthetic: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)

    __table_args__ = (
        # One holder per slug, enforced by the database under any concurrency.
        Index(
            "uq_signup_sessions_slug_holder",
            "slug",
            unique=True,
            postgresql_where=text(_HOLDING_SQL),
            sqlite_where=text(_HOLDING_SQL),
        ),
        Index(
            "uq_signup_sessions_email_in_flight",
            "email",
            unique=True,
            postgresql_where=text(_EMAIL_IN_FLIGHT_SQL),
            sqlite_where=text(_EMAIL_IN_FLIGHT_SQL),
        ),
        Index("ix_signup_sessions_email_slug", "email", "slug"),
        Index("ix_signup_sessions_status_updated", "status", "updated_at"),
        Index("ix_signup_sessions_provisioned", "provisioned_at"),
    )
