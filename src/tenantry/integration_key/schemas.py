"""Integration key bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantry.integration_key.service import SCOPES
from tenantry.kit.clock import utcnow


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=len(SCOPES))
    expires_at: datetime | None = None

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if unknown := set(value) - SCOPES:
            raise ValueError(f"unknown scopes {sorted(unknown)}; choose from {sorted(SCOPES)}")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware_and_ahead(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2027-01-01T00:00:00Z")
        if value is not None and value <= utcnow():
            raise ValueError("must be in the future (a key that has expired is no key)")
        return value


class KeyRead(BaseModel):
    id: str
    name: str
    prefix: str
    last_four: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(BaseModel):
    id: str
    name: str
    prefix: str
    secret: str
    scopes: list[str]
    created_at: datetime
