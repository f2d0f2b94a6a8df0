"""Who may call a route: Annotated aliases that state the audience, roles, scopes and tenant it
needs, built from two checks (`PlatformAccess`, `TenantAccess`) whose requirements stay
readable as attributes, so tests can derive what each route must refuse from the route table.

Every refusal is a 403 FORBIDDEN with a `reason`, logged as `authz_deny`,
counted in `tenantry_authz_denials_total{reason}` and recorded for
`tenantry denials` (tenantry.auth.denials).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Annotated

import structlog
from fastapi import Depends, Request
from sqlalchemy import select

from tenantry.auth.denials import DenialLog
from tenantry.auth.dependencies import REALM, Authenticated
from tenantry.auth.jwt import Audience
from tenantry.auth.principals import Principal
from tenantry.db import DbSession
from tenantry.errors import Forbidden, TokenRevoked
from tenantry.metrics import AUTHZ_DENIALS
from tenantry.models import IntegrationKey, Membership, Tenant
from tenantry.state import state_of

log = structlog.get_logger(__name__)


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
    denials: DenialLog = state_of(request).denials
    denials.add(
        reason=reason,
        route=route,
        method=request.method,
        subject=principal.subject,
        audience=principal.audience.value,
        tenant_id=principal.tenant_id,
    )
    return Forbidden(detail, reason=reason)


def _one_of(names: Iterable[str]) -> str:
    return " or ".join(sorted(names))


class PlatformAccess:
    """An operator of the deployment with one of `roles`; with `services`, also a service's
    `internal` token (re-queue automation)."""

    def __init__(self, roles: Iterable[str], *, services: bool = False) -> None:
        self.roles = frozenset(roles)
        self.services = services

    async def __call__(self, request: Request, principal: Authenticated) -> Principal:
        if self.services and principal.audience is Audience.INTERNAL:
            if "service" in principal.roles:
                return principal
            raise deny(request, principal, "role_mismatch", "This route needs the service role")
        if principal.audience is not Audience.PLATFORM:
            raise deny(request, principal, "audience_mismatch", "This route is for operators")
        if principal.roles.isdisjoint(self.roles):
            needed = _one_of(self.roles)
            raise deny(request, principal, "role_mismatch", f"This route needs role {needed}")
        return principal


class TenantAccess:
    """A user of the tenant named in the path with one of `roles`; with `scopes`, also an
    integration of that tenant holding one of them."""

    def __init__(self, roles: Iterable[str], *, scopes: Iterable[str] = ()) -> None:
        self.roles = frozenset(roles)
        self.scopes = frozenset(scopes)

    async def __call__(
        self, tenant_id: str, request: Request, principal: Authenticated
    ) -> Principal:
        integration = principal.audience is Audience.INTEGRATION and bool(self.scopes)
        if principal.audience is not Audience.TENANT and not integration:
            raise deny(
                request, principal, "audience_mismatch", "This route is for users of a tenant"
            )
        if principal.tenant_id != tenant_id:
            raise deny(request, principal, "tenant_mismatch", "The token is for another tenant")
        if tenant_id in state_of(request).trust.suspended:
            raise deny(request, principal, "tenant_suspended", "The tenant is suspended")
        if integration and principal.scopes.isdisjoint(self.scopes):
            needed = _one_of(self.scopes)
            refusal = deny(request, principal, "scope_missing", f"This route needs scope {needed}")
            # RFC 6750 §3.1: which scope would do.
            scope = " ".join(sorted(self.scopes))
            refusal.headers = {
                "WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'
            }
            raise refusal
        if not integration and principal.roles.isdisjoint(self.roles):
            needed = _one_of(self.roles)
            raise deny(request, principal, "role_mismatch", f"This route needs role {needed}")
        return principal


class CurrentTenantAccess(TenantAccess):
    """`TenantAccess`, then the caller's standing as the database has it now, read under the
    tenant's row lock: for writes that hand out access (keys, invitations, roles).

    A role change or a removal also cuts off the user's tokens for the tenant (every
    process within the auth refresh interval); this check closes that interval for the
    writes that matter, and the lock orders them against a concurrent role change.
    The principal it returns carries the role the membership has now.
    """

    async def __call__(  # type: ignore[override]
        self, tenant_id: str, request: Request, principal: Authenticated, session: DbSession
    ) -> Principal:
        principal = await super().__call__(tenant_id, request, principal)
        await session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())
        if principal.audience is Audience.INTEGRATION:
            key = await session.get(IntegrationKey, principal.subject)
            if key is None or key.revoked_at is not None:
                raise TokenRevoked("The integration key has been revoked")
            return principal
        membership = await session.get(Membership, (tenant_id, principal.subject))
        if membership is None:
            raise deny(request, principal, "tenant_mismatch", "The caller is not a member now")
        if membership.role not in self.roles:
            needed = _one_of(self.roles)
            raise deny(
                request,
                principal,
                "role_mismatch",
                f"This route needs role {needed}; the caller is {membership.role} now",
            )
        return replace(principal, roles=frozenset({membership.role}))


ADMINS = ("owner", "admin")

PlatformOperator = Annotated[Principal, Depends(PlatformAccess(["admin", "support"]))]
PlatformAdmin = Annotated[Principal, Depends(PlatformAccess(["admin"]))]
AdminOrService = Annotated[Principal, Depends(PlatformAccess(["admin"], services=True))]
TenantMember = Annotated[Principal, Depends(TenantAccess([*ADMINS, "member"]))]
InvitationReader = Annotated[Principal, Depends(TenantAccess(ADMINS))]
KeyReader = Annotated[Principal, Depends(TenantAccess(ADMINS, scopes=["admin:keys"]))]
# Writes that hand out access: the caller's role is read from the database.
InvitationManager = Annotated[Principal, Depends(CurrentTenantAccess(ADMINS))]
MemberManager = Annotated[Principal, Depends(CurrentTenantAccess(ADMINS))]
KeyManager = Annotated[Principal, Depends(CurrentTenantAccess(ADMINS, scopes=["admin:keys"]))]
WebhookReader = Annotated[Principal, Depends(TenantAccess(ADMINS, scopes=["webhooks:manage"]))]
WebhookManager = Annotated[
    Principal, Depends(CurrentTenantAccess(ADMINS, scopes=["webhooks:manage"]))
]
EventReader = Annotated[Principal, Depends(TenantAccess(ADMINS, scopes=["events:read"]))]
JobSubmitter = Annotated[Principal, Depends(TenantAccess(ADMINS, scopes=["jobs:write"]))]
JobReader = Annotated[Principal, Depends(TenantAccess(ADMINS, scopes=["jobs:read", "jobs:write"]))]
