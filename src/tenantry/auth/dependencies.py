"""Annotated aliases that state what a route needs from its caller."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenantry.auth.jwt import TokenIssuer
from tenantry.auth.principals import Principal
from tenantry.auth.trust import Trust
from tenantry.errors import Unauthenticated
from tenantry.state import state_of

# auto_error=False: a missing or malformed header is our 401 problem, not Starlette's 403.
_bearer = HTTPBearer(auto_error=False, description="An access token (JWT) from Tenantry")
OptionalBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


REALM = 'Bearer realm="tenantry"'


async def bearer_token(credentials: OptionalBearer) -> str:
    if credentials is None or not credentials.credentials.strip():
        # RFC 6750 §3.1: a request without credentials gets the challenge, no error code.
        raise Unauthenticated(
            "Send an access token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": REALM},
        )
    return credentials.credentials.strip()


def _invalid_token(exc: Unauthenticated) -> Unauthenticated:
    """The same refusal, with the RFC 6750 challenge that names the token as the problem."""
    description = exc.detail.replace('"', "'")
    challenge = f'{REALM}, error="invalid_token", error_description="{description}"'
    exc.headers = {**(exc.headers or {}), "WWW-Authenticate": challenge}
    return exc


async def _authenticated(
    request: Request, token: Annotated[str, Depends(bearer_token)]
) -> Principal:
    state = state_of(request)
    issuer: TokenIssuer = state.tokens
    try:
        claims = issuer.verify(token)
        trust: Trust = state.trust
        trust.check(claims)
    except Unauthenticated as exc:
        raise _invalid_token(exc) from None
    principal = Principal.from_claims(claims)
    structlog.contextvars.bind_contextvars(user_id=principal.subject)
    if principal.tenant_id is not None:  # else the path's tenant, if any, stays named
        structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    return principal


Authenticated = Annotated[Principal, Depends(_authenticated)]
