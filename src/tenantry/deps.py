"""Typed dependencies for what the application holds for its requests: the settings, the
token issuer, the rate limiter, the database. Routes name these instead of reaching into
`request.app.state`, whose attributes are untyped."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tenantry.auth.jwt import TokenIssuer
from tenantry.config import Settings
from tenantry.kit.ratelimit import RateLimiter, limiter_of


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def issuer_of(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.tokens
    return issuer


SettingsDep = Annotated[Settings, Depends(settings_of)]
IssuerDep = Annotated[TokenIssuer, Depends(issuer_of)]
LimiterDep = Annotated[RateLimiter, Depends(limiter_of)]
