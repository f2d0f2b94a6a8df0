"""The brute-force watch on invitation links: failures are counted per kind and limited per
client address; an address that uses up its failures is refused for a while and logged.

Only failures count, so a person opening their link and accepting it is never
slowed down; someone guessing tokens runs into the limit after a handful.
"""

from __future__ import annotations

import structlog
from fastapi import Request

from tenantry.errors import RateLimited, TenantryError
from tenantry.kit.ratelimit import Limit, address_key, limiter_of, request_ip
from tenantry.metrics import TOKEN_VALIDATION_FAILURES
from tenantry.ratelimits import policy
from tenantry.state import state_of

log = structlog.get_logger(__name__)

LIMIT_NAME = "link-failures-ip"


def _limit(request: Request) -> Limit:
    return policy(state_of(request).settings, LIMIT_NAME)


async def admit(request: Request) -> None:
    """Refuse an address that used up its failures, before looking at its token."""
    ip = request_ip(request)
    if (wait := await limiter_of(request).spent(_limit(request), address_key(ip))) is not None:
        raise RateLimited(
            f"Too many invalid links from this address; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


async def failed(request: Request, error: TenantryError) -> None:
    """Count a refused link; a burst from one address is logged as a warning with it."""
    TOKEN_VALIDATION_FAILURES.labels(error.code.lower()).inc()
    ip = request_ip(request)
    state_of(request).abuse.failed("invitation_link", ip)
    decision = await limiter_of(request).hit(_limit(request), address_key(ip))
    if decision.remaining == 0:  # this failure used the address's allowance up
        log.warning("token_validation_burst", ip=ip, limiter=LIMIT_NAME, last=error.code)
