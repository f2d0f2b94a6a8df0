"""Signup request and response bodies; field rules produce 400 VALIDATION per field."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantry.kit.email import Email

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "app", "auth", "billing", "blog", "dashboard", "docs", "help", "login",
        "mail", "root", "signup", "static", "status", "support", "system", "tenantry", "www",
    }
)  # fmt: skip


class SignupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_name: str = Field(min_length=1, max_length=200)
    slug: str = Field(min_length=3, max_length=40)
    email: Email
    plan: str = Field(min_length=1, max_length=40)
    promo_code: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_PATTERN.match(value):
            raise ValueError(
                "use lowercase letters, digits and single hyphens, not at the start or end"
            )
        if value in RESERVED_SLUGS:
            raise ValueError(f"{value!r} is reserved")
        return value


class SignupCreated(BaseModel):
    id: str
    status: str
    expires_at: datetime


class SignupState(BaseModel):
    """What every view of a session shows."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    org_name: str
    slug: str
    plan: str
    tenant_id: str | None
    failure_reason: str | None
    review_reason: str | None
    created_at: datetime
    updated_at: datetime


class SignupRead(SignupState):
    provisioning: dict[str, Any]


class SignupSummary(SignupState):
    """A session as operators triage it: the email's domain, never the address."""

    email_domain: str
    expires_at: datetime


class SignupVerify(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=r"^\d{6}$", description="The 6-digit code from the mail")


class SignupVerified(BaseModel):
    id: str
    status: str
    continuation_token: str


class ContinuationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    continuation_token: str = Field(min_length=1, max_length=200)
