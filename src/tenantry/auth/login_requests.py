"""A sign-in by email code as a request makes it, from the API or from a page (the portal,
the console): the `login` flag, the per-address and per-email limits, abuse records."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import login, sessions
from tenantry.config import Settings
from tenantry.errors import TenantryError
from tenantry.flag.guard import ensure_on
from tenantry.kit.ratelimit import address_key, request_ip
from tenantry.ratelimits import policy
from tenantry.state import state_of

Headers = dict[str, str]


async def limit_asking(
    request: Request, settings: Settings, email: str, *, gated: bool = True
) -> Headers:
    """May this client ask for a code for `email` now? (Else `429`; `503` while the `login`
    flag is off, unless not `gated`: operators' console sign-in stays open in an incident.)"""
    if gated:
        ensure_on(state_of(request).switches, "login")
    ip = request_ip(request)
    limits = [
        (policy(settings, "login-ip"), address_key(ip)),
        (policy(settings, "login-email"), email),
    ]
    return await state_of(request).rate_limiter.enforce(limits, ip=ip)


async def limit_trying(request: Request, settings: Settings, *, gated: bool = True) -> Headers:
    """May this client try a code now?"""
    if gated:
        ensure_on(state_of(request).switches, "login")
    ip = request_ip(request)
    limit = policy(settings, "login-verify-ip")
    return await state_of(request).rate_limiter.enforce([(limit, address_key(ip))], ip=ip)


async def check_code(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    code: str,
    tenant_id: str | None,
) -> tuple[sessions.TokenPair | TenantryError, Headers]:
    """Tokens for the right code; a refusal is returned (its count commits) and recorded as
    a failed verification of the client's address."""
    headers = await limit_trying(request, settings)
    state = state_of(request)
    result = await login.verify_code(
        session, settings, state.tokens, email=email, code=code, tenant_id=tenant_id
    )
    if not isinstance(result, sessions.TokenPair):
        state.abuse.failed("login_code", request_ip(request), email=email)
    return result, headers
