"""Public keys for verifiers and the caller's own view of its token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter, ValidationError

from tenantry.auth import login as login_service
from tenantry.auth import passwords, revocation, sessions
from tenantry.auth.dependencies import Authenticated, OptionalBearer
from tenantry.auth.jwt import Audience
from tenantry.auth.schemas import (
    Accepted,
    Claims,
    ClientCredentialsGrant,
    Jwks,
    LoginRequest,
    LoginVerify,
    LogoutRequest,
    PasswordChange,
    PasswordGrant,
    RefreshGrant,
    SessionTokens,
    TokenGrantResponse,
)
from tenantry.auth.signing_keys import JWKS_MAX_AGE
from tenantry.db import PlatformSession
from tenantry.deps import IssuerDep, LimiterDep, SettingsDep
from tenantry.errors import TenantryError, Unauthenticated, ValidationFailed, problem_response
from tenantry.integration_key import service as integration_keys
from tenantry.kit.ratelimit import Limit, limiter_of, request_ip
from tenantry.models import RevocationKind
from tenantry.state import state_of

router = APIRouter(tags=["auth"])


@router.get(
    "/.well-known/jwks.json",
    response_model=Jwks,
    summary="Public keys that verify Tenantry's access tokens",
)
async def jwks(request: Request) -> JSONResponse:
    # A key is published JWKS_MAX_AGE before it may sign, so a cached copy never misses it.
    max_age = int(JWKS_MAX_AGE.total_seconds())
    return JSONResponse(
        state_of(request).tokens.jwks(), headers={"Cache-Control": f"public, max-age={max_age}"}
    )


@router.get(
    "/v1/whoami", response_model=Claims, summary="The verified claims of the caller's token"
)
async def whoami(principal: Authenticated) -> dict[str, Any]:
    return principal.claims


async def _token_body(request: Request) -> dict[str, Any]:
    """The token request as a form (OAuth 2) or as JSON."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed(
            "Send a form or a JSON object", errors=[{"field": "body", "message": "not an object"}]
        )
    return body


@router.post(
    "/v1/auth/token",
    response_model=TokenGrantResponse,
    summary="Exchange a grant (refresh token, password, client credentials) for tokens",
)
async def token(request: Request, session: PlatformSession) -> JSONResponse:
    body = await _token_body(request)
    try:
        grant = _GRANTS.validate_python(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise ValidationFailed("The token request is not valid", errors=errors) from None
    state = state_of(request)
    if isinstance(grant, ClientCredentialsGrant):
        access, key = await integration_keys.exchange(
            session, state.settings, state.tokens, grant.client_secret
        )
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(state.settings.access_token_ttl.total_seconds()),
            "scope": " ".join(key.scopes),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})
    if isinstance(grant, PasswordGrant):
        ip = request_ip(request)
        limits = [
            (Limit.of("password-ip", state.settings.password_limit_per_ip), ip),
            (
                Limit.of("password-account", state.settings.password_limit_per_account),
                grant.username,
            ),
        ]
        headers = await limiter_of(request).enforce(limits, ip=ip)
        pair = await passwords.login(
            session,
            state.settings,
            state.tokens,
            email=grant.username.lower(),
            password=grant.password,
            tenant_id=grant.tenant_id,
        )
        return JSONResponse(pair.to_response(), headers={**headers, "Cache-Control": "no-store"})
    result = await sessions.rotate(session, state.settings, state.tokens, grant.refresh_token)
    if isinstance(result, sessions.TokenPair):
        return JSONResponse(result.to_response(), headers={"Cache-Control": "no-store"})
    # Returned, not raised: a revoked family must stay revoked.
    return problem_response(result.to_problem(), result.headers)


@router.post("/v1/auth/password", status_code=204, summary="Set or change the caller's password")
async def change_password(
    payload: PasswordChange, principal: Authenticated, session: PlatformSession
) -> Response:
    if principal.audience is not Audience.TENANT:
        raise Unauthenticated("Sign in as a user of a tenant to set a password")
    await passwords.set_password(session, principal.subject, payload.password)
    return Response(status_code=204)


@router.post(
    "/v1/auth/logout",
    status_code=204,
    summary="Revoke a refresh token and its family, and the access token sent along (if any)",
)
async def logout(
    payload: LogoutRequest,
    session: PlatformSession,
    settings: SettingsDep,
    issuer: IssuerDep,
    credentials: OptionalBearer,
) -> Response:
    await sessions.revoke(session, settings, payload.refresh_token)
    if credentials is not None:
        try:
            claims = issuer.verify(credentials.credentials)
        except TenantryError:
            claims = None  # expired or foreign: nothing left to revoke
        if claims is not None:
            expires_at = datetime.fromtimestamp(claims["exp"], UTC)
            await revocation.revoke(
                session, settings, RevocationKind.JTI, claims["jti"], expires_at=expires_at
            )
    return Response(status_code=204)


Grant = RefreshGrant | PasswordGrant | ClientCredentialsGrant
_GRANTS: TypeAdapter[Grant] = TypeAdapter(Annotated[Grant, Field(discriminator="grant_type")])


@router.post(
    "/v1/auth/login",
    status_code=202,
    response_model=Accepted,
    summary="Mail a sign-in code (202 whether or not the address has an account)",
)
async def login(
    payload: LoginRequest,
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
    limiter: LimiterDep,
) -> JSONResponse:
    ip = request_ip(request)
    limits = [
        (Limit.of("login-ip", settings.login_limit_per_ip), ip),
        (Limit.of("login-email", settings.login_limit_per_email), payload.email),
    ]
    headers = await limiter.enforce(limits, ip=ip)
    await login_service.request_code(session, settings, payload.email)
    body = {"detail": "If this address has an account, a sign-in code is on its way."}
    return JSONResponse(body, status_code=202, headers=headers)


@router.post(
    "/v1/auth/login/verify",
    response_model=SessionTokens,
    summary="Exchange the sign-in code for tokens",
)
async def login_verify(
    payload: LoginVerify,
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
    issuer: IssuerDep,
    limiter: LimiterDep,
) -> JSONResponse:
    ip = request_ip(request)
    limit = Limit.of("login-verify-ip", settings.login_verify_limit_per_ip)
    headers = await limiter.enforce([(limit, ip)], ip=ip)
    result = await login_service.verify_code(
        session,
        settings,
        issuer,
        email=payload.email,
        code=payload.code,
        tenant_id=payload.tenant_id,
    )
    if isinstance(result, sessions.TokenPair):
        return JSONResponse(result.to_response(), headers={**headers, "Cache-Control": "no-store"})
    return problem_response(result.to_problem(), {**headers, **(result.headers or {})})
