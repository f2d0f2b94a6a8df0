"""`/v1/signup`: start a signup, re-send its code, read its state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tenantry.auth.schemas import SessionTokens
from tenantry.db import PlatformSession
from tenantry.deps import IssuerDep, LimiterDep, SettingsDep
from tenantry.errors import TenantryError, problem_response
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.otp import OtpInvalid
from tenantry.metrics import SIGNUP_REQUESTS
from tenantry.models import SignupSession
from tenantry.openapi import problems
from tenantry.provisioning.service import checkpoints, step_view
from tenantry.signup import handoff, service
from tenantry.signup.requests import begin, check_code, resend
from tenantry.signup.schemas import (
    ContinuationRequest,
    SignupCreate,
    SignupCreated,
    SignupRead,
    SignupState,
    SignupVerified,
    SignupVerify,
)

router = APIRouter(prefix="/v1/signup", tags=["signup"])


def _created(signup: SignupSession) -> SignupCreated:
    return SignupCreated(id=signup.id, status=signup.status, expires_at=signup.expires_at)


@router.post(
    "",
    responses={
        **problems(409, 429, 503),
        200: {"model": SignupCreated, "description": "The same session, already pending"},
    },
    status_code=201,
    response_model=SignupCreated,
    summary="Start a signup: a 6-digit code is mailed (200: the same session, already pending)",
)
async def start_signup(
    payload: SignupCreate,
    request: Request,
    session: PlatformSession,
    idempotency: Idempotency,
    settings: SettingsDep,
    limiter: LimiterDep,
) -> JSONResponse:
    try:
        if replay := await idempotency.replay(session, "signup", payload.model_dump(mode="json")):
            SIGNUP_REQUESTS.labels("replayed").inc()
            return replay
    except TenantryError as exc:
        SIGNUP_REQUESTS.labels(exc.code).inc()
        raise
    started, headers = await begin(request, session, settings, limiter, payload)
    body = _created(started.signup).model_dump(mode="json")
    response = await idempotency.remember(session, 201 if started.created else 200, body)
    response.headers.update(headers)
    return response


@router.get("/{signup_id}", response_model=SignupRead, summary="The state of a signup session")
async def read_signup(signup_id: str, session: PlatformSession) -> SignupRead:
    signup = await service.get_signup(session, signup_id)
    steps = [step_view(c) for c in await checkpoints(session, signup.id)]
    return SignupRead(
        **SignupState.model_validate(signup).model_dump(), provisioning={"steps": steps}
    )


@router.post(
    "/{signup_id}/resend",
    responses=problems(409, 410, 429),
    status_code=202,
    response_model=SignupCreated,
    summary="Mail a new code (the old one dies); 429 within the cooldown",
)
async def resend_code(
    signup_id: str,
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
    limiter: LimiterDep,
) -> JSONResponse:
    signup, headers = await resend(request, session, settings, limiter, signup_id)
    return JSONResponse(_created(signup).model_dump(mode="json"), status_code=202, headers=headers)


@router.post(
    "/{signup_id}/verify",
    responses=problems(409, 410, 423, 429),
    response_model=SignupVerified,
    summary="Check the mailed code: provisioning starts and a continuation token is issued",
)
async def verify_code(
    signup_id: str,
    payload: SignupVerify,
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
    limiter: LimiterDep,
) -> JSONResponse:
    result, headers = await check_code(request, session, settings, limiter, signup_id, payload.code)
    if isinstance(result, OtpInvalid):
        return problem_response(result.to_problem(), headers)
    body = SignupVerified(
        id=result.signup.id,
        status=result.signup.status,
        continuation_token=result.continuation_token,
    )
    return JSONResponse(body.model_dump(mode="json"), headers=headers)


@router.post(
    "/{signup_id}/session",
    responses=problems(401, 409),
    response_model=SessionTokens,
    summary="Exchange the continuation token for the owner's tokens, once the tenant exists",
)
async def owner_session(
    signup_id: str,
    payload: ContinuationRequest,
    session: PlatformSession,
    settings: SettingsDep,
    issuer: IssuerDep,
) -> dict[str, Any]:
    signup = await service.redeem_continuation(
        session, settings, signup_id, payload.continuation_token
    )
    return (await handoff.owner_tokens(session, settings, issuer, signup)).to_response()
