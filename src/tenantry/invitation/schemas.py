"""Invitation bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tenantry.kit.email import Email

Role = Literal["owner", "admin", "member"]


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Email = Field(max_length=320)
    role: Role


class InvitationRead(BaseModel):
    id: str
    email: str
    role: str
    status: str
    created_at: datetime
    expires_at: datetime
    invited_by: str


class InvitationLookup(BaseModel):
    tenant_name: str
    email: str
    role: str
    status: str
    expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    token: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=12, max_length=1000)
