"""Public keys for verifiers and the caller's own view of its token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter, ValidationError

from tenantry.auth import login as login_service
from tenantry.auth import login_requests, oauth, passwords, revocation, sessions
from tenantry.auth.dependencies import Authenticated, OptionalBearer
from tenantry.auth.jwt import Audience, TokenIssuer
from tenantry.auth.schemas import (
    Accepted,
    AuthorizationCodeGrant,
    AuthorizationServerMetadata,
    Claims,
    ClientCredentialsGrant,
    Jwks,
    LoginRequest,
    LoginVerify,
    LogoutRequest,
    OpenIdConfiguration,
    PasswordChange,
    PasswordGrant,
    RefreshGrant,
    SessionTokens,
    TokenGrantResponse,
    TokenRequest,
)
from tenantry.auth.signing_keys import JWKS_MAX_AGE
from tenantry.config import Settings
from tenantry.db import PlatformSession
from tenantry.deps import IssuerDep, LimiterDep, SettingsDep
from tenantry.errors import TenantryError, Unauthenticated, ValidationFailed, problem_response
from tenantry.flag.guard import ensure_on, feature
from tenantry.integration_key import service as integration_keys
from tenantry.kit.ratelimit import RateLimiter, address_key, request_ip
from tenantry.models import RevocationKind
from tenantry.openapi import problems
from tenantry.ratelimits import policy
from tenantry.signup import handoff
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


def _metadata(settings: Settings) -> dict[str, Any]:
    base = settings.public_url.rstrip("/")
    return {
        "issuer": settings.public_url,
        "token_endpoint": f"{base}/v1/auth/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": list(oauth.GRANT_TYPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": sorted(integration_keys.SCOPES),
        # No authorization endpoint: tokens come from the token endpoint alone.
        "response_types_supported": [],
    }


@router.get(
    "/.well-known/oauth-authorization-server",
    response_model=AuthorizationServerMetadata,
    summary="RFC 8414 metadata: the issuer, its token endpoint and its keys",
)
async def authorization_server(settings: SettingsDep) -> AuthorizationServerMetadata:
    return AuthorizationServerMetadata(**_metadata(settings))


@router.get(
    "/.well-known/openid-configuration",
    response_model=OpenIdConfiguration,
    summary="OpenID discovery, for verifiers that look there (the fields that apply)",
)
async def openid_configuration(settings: SettingsDep) -> OpenIdConfiguration:
    return OpenIdConfiguration(
        **_metadata(settings),
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["EdDSA"],
    )


@router.get(
    "/v1/whoami", response_model=Claims, summary="The verified claims of the caller's token"
)
async def whoami(principal: Authenticated) -> dict[str, Any]:
    return principal.claims


TOKEN_REQUEST_DOCS = {
    # The form, as OAuth 2 has it; the same fields as a JSON object are accepted too (our
    # own callers), left out here: generated clients handle one body type per operation.
    "requestBody": {
        "required": True,
        "content": {oauth.FORM: {"schema": TokenRequest.model_json_schema()}},
    },
    # Integrations authenticate as clients; people's grants need no client authentication.
    "security": [{}, {"clientSecretBasic": []}],
}


TOKEN_PATH = "/v1/auth/token"  # noqa: S105 (a path, not a password)


@router.post(
    TOKEN_PATH,
    responses=problems(401, 403, 415, 429),
    openapi_extra=TOKEN_REQUEST_DOCS,
    response_model=TokenGrantResponse,
    summary="OAuth 2.0 token endpoint: client credentials, refresh token, password or the "
    "hosted signup's authorization code",
)
async def token(
    request: Request, settings: SettingsDep, issuer: IssuerDep, limiter: LimiterDep
) -> JSONResponse:
    grant_type: str | None = None
    basic = False
    try:
        body = await oauth.read_body(request)
        grant_type = oauth.check_grant_type(body)
        client = oauth.client_auth(request, body)
        basic = client is not None and client.basic
        grant = _GRANTS.validate_python({**body, **_client_fields(client)})
        answer = await _grant(request, settings, issuer, limiter, grant)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, e["loc"][1:] or e["loc"])) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        invalid = ValidationFailed("The token request is not valid", errors=errors)
        raise oauth.OAuthRefusal(invalid, grant_type) from None
    except TenantryError as exc:
        raise oauth.OAuthRefusal(exc, grant_type, basic=basic) from exc
    if isinstance(answer, TenantryError):
        # Returned, not raised: a reused refresh token's family stays revoked.
        refusal = oauth.OAuthRefusal(answer, grant_type)
        return problem_response(refusal.to_problem(), refusal.headers)
    payload, headers = answer
    return JSONResponse(payload, headers={**headers, **oauth.NO_CACHE})


def _client_fields(client: oauth.ClientAuth | None) -> dict[str, str]:
    """The authenticated client as grant fields (Basic credentials join the body's)."""
    if client is None:
        return {}
    fields = {"client_secret": client.client_secret}
    if client.client_id:
        fields["client_id"] = client.client_id
    return fields


async def _grant(
    request: Request,
    settings: Settings,
    issuer: TokenIssuer,
    limiter: RateLimiter,
    grant: Grant,
) -> tuple[dict[str, Any], dict[str, str]] | TenantryError:
    """The grant's answer and its extra headers, or a refusal that must commit.

    The exchange opens what it needs itself (usually nothing: tenantry.integration_key.
    service); the people's grants write in one transaction of their own.
    """
    state = state_of(request)
    if isinstance(grant, ClientCredentialsGrant):
        access, scopes = await integration_keys.exchange(
            state, grant.client_secret, client_id=grant.client_id, scope=grant.scope
        )
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(settings.access_token_ttl.total_seconds()),
            "scope": " ".join(scopes),
        }
        return body, {}
    headers: dict[str, str] = {}
    if isinstance(grant, PasswordGrant):
        ensure_on(state.switches, "login")
        ip = request_ip(request)
        limits = [
            (policy(settings, "password-ip"), address_key(ip)),
            (policy(settings, "password-account"), grant.username),
        ]
        headers = await limiter.enforce(limits, ip=ip)
    async with state.database.session(cross_tenant=f"route {TOKEN_PATH}") as session:
        if isinstance(grant, PasswordGrant):
            try:
                pair = await passwords.login(
                    session,
                    settings,
                    issuer,
                    email=grant.username,
                    password=grant.password,
                    tenant_id=grant.tenant_id,
                )
            except TenantryError:
                state.abuse.failed("password", request_ip(request), email=grant.username)
                raise
            return pair.to_response(), headers
        if isinstance(grant, AuthorizationCodeGrant):
            signup = await handoff.redeem(session, settings, grant.code)
            return (await handoff.owner_tokens(session, settings, issuer, signup)).to_response(), {}
        result = await sessions.rotate(session, settings, issuer, grant.refresh_token)
    if isinstance(result, sessions.TokenPair):
        return result.to_response(), {}
    return result


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


Grant = RefreshGrant | PasswordGrant | ClientCredentialsGrant | AuthorizationCodeGrant
_GRANTS: TypeAdapter[Grant] = TypeAdapter(Annotated[Grant, Field(discriminator="grant_type")])


@router.post(
    "/v1/auth/login",
    dependencies=[feature("login")],
    responses=problems(429),
    status_code=202,
    response_model=Accepted,
    summary="Mail a sign-in code (202 whether or not the address has an account)",
)
async def login(
    payload: LoginRequest, request: Request, session: PlatformSession, settings: SettingsDep
) -> JSONResponse:
    headers = await login_requests.limit_asking(request, settings, payload.email)
    await login_service.request_code(session, settings, payload.email)
    body = {"detail": "If this address has an account, a sign-in code is on its way."}
    return JSONResponse(body, status_code=202, headers=headers)


@router.post(
    "/v1/auth/login/verify",
    dependencies=[feature("login")],
    responses=problems(401, 429),
    response_model=SessionTokens,
    summary="Exchange the sign-in code for tokens",
)
async def login_verify(
    payload: LoginVerify, request: Request, session: PlatformSession, settings: SettingsDep
) -> JSONResponse:
    result, headers = await login_requests.check_code(
        request,
        session,
        settings,
        email=payload.email,
        code=payload.code,
        tenant_id=payload.tenant_id,
    )
    if isinstance(result, sessions.TokenPair):
        return JSONResponse(result.to_response(), headers={**headers, "Cache-Control": "no-store"})
    return problem_response(result.to_problem(), {**headers, **(result.headers or {})})
