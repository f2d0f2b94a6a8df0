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


def bearer_token(credentials: OptionalBearer) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise Unauthenticated("Send an access token as 'Authorization: Bearer <token>'")
    return credentials.credentials.strip()


async def _authenticated(
    request: Request, token: Annotated[str, Depends(bearer_token)]
) -> Principal:
    state = state_of(request)
    issuer: TokenIssuer = state.tokens
    claims = issuer.verify(token)
    trust: Trust = state.trust
    trust.check(claims)
    principal = Principal.from_claims(claims)
    structlog.contextvars.bind_contextvars(user_id=principal.subject, tenant_id=principal.tenant_id)
    return principal


Authenticated = Annotated[Principal, Depends(_authenticated)]
