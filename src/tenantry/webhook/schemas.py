"""What `/v1/tenants/{tenant_id}/webhook-endpoints` takes and answers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from tenantry.config import Duration

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
# An exact event type, or every type under a prefix: `activation.*`.
EventTypePattern = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?$", max_length=100)
]
EventTypes = Annotated[list[EventTypePattern], Field(max_length=50)]
RatePerSecond = Annotated[int, Field(ge=1, le=10_000)]
MAX_GRACE = timedelta(days=7)


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    description: Annotated[str, Field(max_length=500)] = ""
    event_types: EventTypes = []
    enabled: bool = True
    rate_limit_per_s: RatePerSecond | None = None  # unset: as fast as it answers


class EndpointUpdate(BaseModel):
    """The fields present change; `rate_limit_per_s: null` removes the limit."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    event_types: EventTypes | None = None
    enabled: bool | None = None
    rate_limit_per_s: RatePerSecond | None = None

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True, exclude={"reason"})
        return {k: v for k, v in given.items() if v is not None or k == "rate_limit_per_s"}


class OperatorEndpointUpdate(EndpointUpdate):
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class EndpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    rate_limit_per_s: int | None
    last_success_at: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointRead):
    secret: str  # shown once


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace: Duration | None = None  # default TENANTRY_WEBHOOK_ROTATION_GRACE (24h)

    @field_validator("grace")
    @classmethod
    def _bounded(cls, grace: timedelta | None) -> timedelta | None:
        if grace is not None and not timedelta(0) <= grace <= MAX_GRACE:
            raise ValueError("grace must be between 0 and 7 days")
        return grace


class SecretRead(BaseModel):
    secret: str


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    message_id: str
    event_type: str
    attempt: int
    status: Literal["succeeded", "failed"]
    response_status: int | None
    response_excerpt: str | None
    duration_ms: int
    error: str | None
    trigger: Literal["scheduled", "manual"]
    created_at: datetime
    next_attempt_at: datetime | None


class Recover(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime
    until: AwareDatetime | None = None


class Recovered(BaseModel):
    messages: int


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
