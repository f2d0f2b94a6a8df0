"""Platform operators: the `platform` audience with the admin or support role."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends

from tenantry.auth.dependencies import Authenticated
from tenantry.auth.jwt import Audience
from tenantry.auth.principals import Principal
from tenantry.errors import TenantryError
from tenantry.metrics import AUTHZ_DENIALS

log = structlog.get_logger(__name__)


class Forbidden(TenantryError):
    status, code, title = 403, "FORBIDDEN", "Not allowed"


def deny(principal: Principal, reason: str, detail: str) -> Forbidden:
    AUTHZ_DENIALS.labels(reason).inc()
    log.warning(
        "authz_deny", reason=reason, subject=principal.subject, tenant_id=principal.tenant_id
    )
    return Forbidden(detail, reason=reason)


async def _platform_operator(principal: Authenticated) -> Principal:
    if principal.audience is not Audience.PLATFORM:
        raise deny(principal, "audience_mismatch", "This route is for platform operators")
    if not principal.roles & {"admin", "support"}:
        raise deny(principal, "role_mismatch", "This route needs the admin or support role")
    return principal


PlatformOperator = Annotated[Principal, Depends(_platform_operator)]
