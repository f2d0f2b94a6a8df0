"""What `/v1/tenants/{tenant_id}` answers: the tenant, its members, its provisioning."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["owner", "admin", "member"]


class TenantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    slug: str
    name: str
    plan: str
    status: str
    settings: dict[str, Any]
    created_at: datetime


class MemberRead(BaseModel):
    user_id: str
    email: str
    name: str | None
    role: Role
    joined_at: datetime


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberRole(BaseModel):
    user_id: str
    role: Role


class StepRead(BaseModel):
    name: str
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None


class ProvisioningRead(BaseModel):
    status: Literal["pending", "processing", "completed", "review_required", "failed"]
    steps: list[StepRead]
