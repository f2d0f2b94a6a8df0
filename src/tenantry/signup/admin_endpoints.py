"""`/v1/admin/signup-sessions`: triage for platform operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tenantry.auth.access import AdminOrService, PlatformOperator
from tenantry.db import PlatformReader, PlatformSession
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.pagination import Page, PageQuery, page_of
from tenantry.models import SignupSession, SignupStatus
from tenantry.openapi import problems
from tenantry.signup import service
from tenantry.signup.schemas import SignupState, SignupSummary

router = APIRouter(prefix="/v1/admin/signup-sessions", tags=["admin"])


def summary(signup: SignupSession) -> dict[str, Any]:
    state = SignupState.model_validate(signup).model_dump()
    email_domain = service.email_domain(signup.email)
    view = SignupSummary(**state, email_domain=email_domain, expires_at=signup.expires_at)
    return view.model_dump(mode="json")


@router.get(
    "",
    response_model=Page[SignupSummary],
    summary="Signup sessions, newest first, optionally of one status",
)
async def list_sessions(
    _: PlatformOperator,
    session: PlatformReader,
    page: PageQuery,
    status: SignupStatus | None = None,
) -> dict[str, Any]:
    rows = await service.list_signups(
        session, status=status, after=page.after, limit=page.limit + 1
    )
    return page_of(list(rows), page.limit, summary)


@router.post(
    "/{signup_id}/retry",
    responses=problems(409),
    status_code=202,
    response_model=SignupSummary,
    summary="Resume a REVIEW_REQUIRED or FAILED provisioning run from its last checkpoint",
)
async def retry(
    signup_id: str, caller: AdminOrService, session: PlatformSession, idempotency: Idempotency
) -> JSONResponse:
    if replay := await idempotency.replay(session, "admin", {"signup_id": signup_id}):
        return replay
    signup = await service.retry_provisioning(session, signup_id, by=caller.subject)
    return await idempotency.remember(session, 202, summary(signup))
