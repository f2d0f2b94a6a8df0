"""What a signup request does, whether it came as JSON (`/v1/signup`) or from the hosted
page (`/signup`): the same rate limits, metrics, abuse records and service calls."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.errors import TenantryError
from tenantry.kit.otp import OtpInvalid
from tenantry.kit.ratelimit import RateLimiter, address_key, request_ip
from tenantry.metrics import SIGNUP_REQUESTS, SIGNUP_VERIFICATIONS
from tenantry.models import SignupSession
from tenantry.ratelimits import policy
from tenantry.signup import service
from tenantry.signup.schemas import SignupCreate
from tenantry.state import state_of

Headers = dict[str, str]


async def begin(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    payload: SignupCreate,
) -> tuple[service.Started, Headers]:
    """Start a signup (or find the same one pending) within the per-address, per-email and
    per-domain limits."""
    ip = request_ip(request)
    domain = service.email_domain(payload.email)
    limits = [
        (policy(settings, "signup-ip"), address_key(ip)),
        (policy(settings, "signup-email"), payload.email),
        (policy(settings, "signup-domain"), domain),
    ]
    try:
        service.ensure_open(settings, state_of(request).switches)
        headers = await limiter.enforce(limits, ip=ip, email_domain=domain)
        started = await service.start_signup(session, settings, payload, client_ip=ip)
    except TenantryError as exc:
        SIGNUP_REQUESTS.labels(exc.code).inc()
        raise
    SIGNUP_REQUESTS.labels("created" if started.created else "replayed").inc()
    return started, headers


async def check_code(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    signup_id: str,
    code: str,
) -> tuple[service.Verified | OtpInvalid, Headers]:
    """Verify the mailed code; a wrong one is returned (its count must commit), and failures
    are abuse signals of the client's address."""
    ip = request_ip(request)
    limits = [(policy(settings, "signup-verify-ip"), address_key(ip))]
    try:
        headers = await limiter.enforce(limits, ip=ip, signup_id=signup_id)
        result = await service.verify_code(session, settings, signup_id, code)
    except TenantryError as exc:
        SIGNUP_VERIFICATIONS.labels(exc.code).inc()
        if exc.code in ("OTP_LOCKED", "OTP_EXPIRED"):
            state_of(request).abuse.failed("signup_code", ip)
        raise
    if isinstance(result, OtpInvalid):
        SIGNUP_VERIFICATIONS.labels(result.code).inc()
        state_of(request).abuse.failed("signup_code", ip)
    else:
        SIGNUP_VERIFICATIONS.labels("verified").inc()
    return result, headers


async def resend(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    signup_id: str,
) -> tuple[SignupSession, Headers]:
    ip = request_ip(request)
    limits = [(policy(settings, "signup-resend-ip"), address_key(ip))]
    headers = await limiter.enforce(limits, ip=ip, signup_id=signup_id)
    return await service.resend_code(session, settings, signup_id), headers
