"""`/v1/admin/signup-sessions`: triage for platform operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tenantry.auth.access import AdminOrService, PlatformOperator
from tenantry.db import DbSession
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.pagination import Page, page_of
from tenantry.models import SignupSession, SignupStatus
from tenantry.signup import service
from tenantry.signup.schemas import SignupSummary

router = APIRouter(prefix="/v1/admin/signup-sessions", tags=["admin"])


def summary(signup: SignupSession) -> dict[str, Any]:
    return SignupSummary(
        id=signup.id,
        status=signup.status,
        org_name=signup.org_name,
        slug=signup.slug,
        plan=signup.plan,
        email_domain=service.email_domain(signup.email),
        tenant_id=signup.tenant_id,
        failure_reason=signup.failure_reason,
        review_reason=signup.review_reason,
        created_at=signup.created_at,
        updated_at=signup.updated_at,
        expires_at=signup.expires_at,
    ).model_dump(mode="json")


@router.get("", summary="Signup sessions, newest first, optionally of one status")
async def list_sessions(
    _: PlatformOperator, session: DbSession, page: Page, status: SignupStatus | None = None
) -> dict[str, Any]:
    rows = await service.list_signups(
        session, status=status, after=page.after, limit=page.limit + 1
    )
    return page_of(list(rows), page.limit, summary)


@router.post(
    "/{signup_id}/retry",
    status_code=202,
    summary="Resume a REVIEW_REQUIRED or FAILED provisioning run from its last checkpoint",
)
async def retry(
    signup_id: str, caller: AdminOrService, session: DbSession, idempotency: Idempotency
) -> JSONResponse:
    if replay := await idempotency.replay(session, "admin", {"signup_id": signup_id}):
        return replay
    signup = await service.retry_provisioning(session, signup_id, by=caller.subject)
    return await idempotency.remember(session, 202, summary(signup))
