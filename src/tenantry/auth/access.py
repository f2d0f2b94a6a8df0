"""Who may call a route: Annotated aliases that state the audience, roles and tenant it needs.

Every refusal is a 403 FORBIDDEN with a `reason`, logged as `authz_deny`,
counted in `tenantry_authz_denials_total{reason}` and recorded for
`tenantry denials` (tenantry.auth.denials).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, Request

from tenantry.auth.denials import DenialLog
from tenantry.auth.dependencies import Authenticated
from tenantry.auth.jwt import Audience
from tenantry.auth.principals import Principal
from tenantry.errors import TenantryError
from tenantry.metrics import AUTHZ_DENIALS

log = structlog.get_logger(__name__)


class Forbidden(TenantryError):
    status, code, title = 403, "FORBIDDEN", "Not allowed"


def deny(request: Request, principal: Principal, reason: str, detail: str) -> Forbidden:
    AUTHZ_DENIALS.labels(reason).inc()
    route = getattr(request.scope.get("route"), "path", request.url.path)
    log.warning(
        "authz_deny",
        reason=reason,
        route=route,
        subject=principal.subject,
        tenant_id=principal.tenant_id,
    )
    denials: DenialLog = request.app.state.denials
    denials.add(
        reason=reason,
        route=route,
        method=request.method,
        subject=principal.subject,
        audience=principal.audience.value,
        tenant_id=principal.tenant_id,
    )
    return Forbidden(detail, reason=reason)


async def _platform_operator(request: Request, principal: Authenticated) -> Principal:
    if principal.audience is not Audience.PLATFORM:
        raise deny(request, principal, "audience_mismatch", "This route is for platform operators")
    if not principal.roles & {"admin", "support"}:
        raise deny(
            request, principal, "role_mismatch", "This route needs the admin or support role"
        )
    return principal


async def _admin_or_service(request: Request, principal: Authenticated) -> Principal:
    """Platform admins, and services with an `internal` token (re-queue automation)."""
    if principal.audience is Audience.INTERNAL and "service" in principal.roles:
        return principal
    if principal.audience is not Audience.PLATFORM:
        raise deny(
            request,
            principal,
            "audience_mismatch",
            "This route is for platform admins and services",
        )
    if "admin" not in principal.roles:
        raise deny(request, principal, "role_mismatch", "This route needs the admin role")
    return principal


def tenant_access(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A user of the tenant named in the path, with one of `roles`."""
    allowed = frozenset(roles)

    async def check(tenant_id: str, request: Request, principal: Authenticated) -> Principal:
        if principal.audience is not Audience.TENANT:
            raise deny(
                request, principal, "audience_mismatch", "This route is for users of a tenant"
            )
        if principal.tenant_id != tenant_id:
            raise deny(request, principal, "tenant_mismatch", "The token is for another tenant")
        if not principal.roles & allowed:
            raise deny(
                request,
                principal,
                "role_mismatch",
                f"This route needs one of: {', '.join(sorted(allowed))}",
            )
        return principal

    return check


def tenant_admin_or_scope(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A tenant owner or admin, or an integration of that tenant holding one of `scopes`."""
    as_admin = tenant_access("owner", "admin")
    wanted = " or ".join(scopes)

    async def check(tenant_id: str, request: Request, principal: Authenticated) -> Principal:
        if principal.audience is not Audience.INTEGRATION:
            return await as_admin(tenant_id, request, principal)
        if principal.tenant_id != tenant_id:
            raise deny(request, principal, "tenant_mismatch", "The token is for another tenant")
        if principal.scopes.isdisjoint(scopes):
            raise deny(request, principal, "scope_missing", f"This route needs scope {wanted}")
        return principal

    return check


PlatformOperator = Annotated[Principal, Depends(_platform_operator)]
KeyManager = Annotated[Principal, Depends(tenant_admin_or_scope("admin:keys"))]
EventReader = Annotated[Principal, Depends(tenant_admin_or_scope("events:read"))]
JobSubmitter = Annotated[Principal, Depends(tenant_admin_or_scope("jobs:write"))]
JobReader = Annotated[Principal, Depends(tenant_admin_or_scope("jobs:read", "jobs:write"))]
AdminOrService = Annotated[Principal, Depends(_admin_or_service)]
TenantMember = Annotated[Principal, Depends(tenant_access("owner", "admin", "member"))]
TenantAdmin = Annotated[Principal, Depends(tenant_access("owner", "admin"))]
