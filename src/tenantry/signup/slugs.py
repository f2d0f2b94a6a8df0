"""Why a slug can or cannot be had: what `tenantry slugs check` tells support ("the signup says
my slug is taken")."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.clock import utcnow
from tenantry.models import SignupSession, SignupStatus, Tenant
from tenantry.models.signup_session import SLUG_HOLDING
from tenantry.signup.schemas import RESERVED_SLUGS, SignupCreate


@dataclass(frozen=True)
class SlugState:
    slug: str
    state: str  # free, reserved, invalid or held
    detail: str
    holder: str | None = None  # the tenant's or signup session's id
    holder_status: str | None = None


def _shape_problem(slug: str) -> str | None:
    probe = {"org_name": "x", "slug": slug, "email": "x@example.com", "plan": "x"}
    try:
        SignupCreate.model_validate(probe)
    except ValidationError as exc:
        return "; ".join(str(e["msg"]) for e in exc.errors() if e["loc"] == ("slug",)) or None
    return None


async def check(session: AsyncSession, slug: str) -> SlugState:
    if slug in RESERVED_SLUGS:
        return SlugState(slug, "reserved", "reserved for the platform's own names")
    if problem := _shape_problem(slug):
        return SlugState(slug, "invalid", problem)
    tenant = (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar()
    if tenant is not None:
        detail = f"tenant {tenant.name!r} ({tenant.status}) has it"
        return SlugState(slug, "held", detail, tenant.id, tenant.status)
    holding = select(SignupSession).where(
        SignupSession.slug == slug, SignupSession.status.in_(SLUG_HOLDING)
    )
    signup = (await session.execute(holding)).scalar()
    if signup is None:
        return SlugState(slug, "free", "no tenant or live signup holds it")
    detail = f"signup session in {signup.status}"
    if signup.status == SignupStatus.PENDING_EMAIL_VERIFICATION and signup.expires_at <= utcnow():
        detail += " past its expiry: the next signup for it takes it over"
    return SlugState(slug, "held", detail, signup.id, signup.status)
