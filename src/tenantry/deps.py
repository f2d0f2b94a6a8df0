"""Typed dependencies for what the application holds for its requests: the settings, the
token issuer, the rate limiter. Routes name these instead of reaching into `app.state`.

Every dependency of this API is `async def`: FastAPI runs a plain `def` one on its
thread pool, a thread hop (and a wait for the GIL) per request for a lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tenantry.auth.jwt import TokenIssuer
from tenantry.config import Settings
from tenantry.kit.ratelimit import RateLimiter
from tenantry.state import state_of


async def _settings(request: Request) -> Settings:
    return state_of(request).settings


async def _issuer(request: Request) -> TokenIssuer:
    return state_of(request).tokens


async def _limiter(request: Request) -> RateLimiter:
    return state_of(request).rate_limiter


SettingsDep = Annotated[Settings, Depends(_settings)]
IssuerDep = Annotated[TokenIssuer, Depends(_issuer)]
LimiterDep = Annotated[RateLimiter, Depends(_limiter)]
