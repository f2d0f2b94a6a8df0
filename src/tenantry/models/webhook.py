"""Outbound webhooks: a tenant's endpoints, the messages its events became, each message's
delivery to each endpoint, and every attempt of a delivery.

One message per event (its id is the `webhook-id` every endpoint sees), one delivery per
message and endpoint (the unit that is claimed, retried and replayed), one attempt row per
HTTP request made.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenantry.models.base import Base, JsonDocument, UtcDateTime


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(500))
    event_types: Mapped[list[str]] = mapped_column(JsonDocument)  # empty: every type
    status: Mapped[str] = mapped_column(String(16))
    # Why it is disabled: gone (410), failing (no success for days), or who disabled it.
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    rate_limit_per_s: Mapped[int | None] = mapped_column(Integer)
    # The signing secret, sealed (it must be used, so it cannot be a digest); during a
    # rotation's grace the previous one signs too.
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Since when every attempt failed (NULL after a success): five days of it disable it.
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_webhook_endpoints_tenant_created", "tenant_id", "created_at"),)

    @property
    def enabled(self) -> bool:
        return self.status == EndpointStatus.ENABLED


class WebhookMessage(Base):
    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_…, the webhook-id
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[str] = mapped_column(Text)  # the body, byte for byte as signed and sent
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    message_id: Mapped[str] = mapped_column(String(40), ForeignKey("webhook_messages.id"))
    endpoint_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)  # attempts made (recorded) so far
    trigger: Mapped[str] = mapped_column(String(16))  # of the next attempt: scheduled|manual
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # While delivering: the claim's token (what its outcome must match) and its lease,
    # renewed by the dispatcher holding it, taken back by any once it runs out.
    claim_token: Mapped[str | None] = mapped_column(String(40))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Only so that a flush writes the message before its deliveries (the fan-out adds both).
    message: Mapped[WebhookMessage] = relationship(lazy="raise")

    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "status", "created_at"),
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(40), ForeignKey("tenants.id"))
    endpoint_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # succeeded|failed
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)  # at most 1 KiB
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    trigger: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_webhook_attempts_endpoint_created", "endpoint_id", "created_at"),)
