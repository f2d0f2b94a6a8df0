"""Annotated aliases that state what a route needs from its caller."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request

from tenantry.auth.jwt import TokenIssuer
from tenantry.auth.principals import Principal
from tenantry.auth.trust import Trust
from tenantry.errors import Unauthenticated


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send an access token as 'Authorization: Bearer <token>'")
    return token.strip()


async def _authenticated(request: Request) -> Principal:
    state = request.app.state
    issuer: TokenIssuer = state.tokens
    claims = issuer.verify(bearer_token(request))
    trust: Trust = state.trust
    trust.check(claims)
    principal = Principal.from_claims(claims)
    structlog.contextvars.bind_contextvars(user_id=principal.subject, tenant_id=principal.tenant_id)
    return principal


Authenticated = Annotated[Principal, Depends(_authenticated)]
