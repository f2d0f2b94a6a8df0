"""Who is signed in to the portal: the tenant tokens of the email-code sign-in (CONTRACT §6),
kept in HttpOnly, SameSite=Strict cookies scoped to `/portal`.

The access token is verified as the API verifies it (signature, revocations, the
tenant's suspension); once it expires, the refresh token is rotated and the new pair
set on the response. Forms carry a double-submit CSRF value: random per sign-in, in a
cookie of its own and in every form, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from fastapi import Request, Response

from tenantry.auth import sessions
from tenantry.auth.jwt import Audience
from tenantry.auth.principals import Principal
from tenantry.errors import TenantryError
from tenantry.state import AppState, state_of

ACCESS = "tenantry_portal_access"
REFRESH = "tenantry_portal_refresh"
CSRF = "tenantry_portal_csrf"
FLOW = "tenantry_portal_email"
PATH = "/portal"
MANAGERS = frozenset({"owner", "admin"})


@dataclass
class PortalUser:
    principal: Principal
    csrf: str
    renewed: sessions.TokenPair | None = field(default=None)

    @property
    def tenant_id(self) -> str:
        assert self.principal.tenant_id is not None
        return self.principal.tenant_id

    @property
    def may_manage(self) -> bool:
        return not self.principal.roles.isdisjoint(MANAGERS)

    def finish(self, response: Response, state: AppState) -> Response:
        """Set the rotated tokens, if the request rotated them."""
        if self.renewed is not None:
            keep(response, state, self.renewed, self.csrf)
        return response


def _cookie(response: Response, state: AppState, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        secure=state.settings.public_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )


def keep(response: Response, state: AppState, pair: sessions.TokenPair, csrf: str | None) -> None:
    """The signed-in cookies: the tokens, and the CSRF value (new at sign-in)."""
    settings = state.settings
    refresh_s = int(settings.refresh_token_ttl.total_seconds())
    _cookie(response, state, ACCESS, pair.access_token, refresh_s)
    _cookie(response, state, REFRESH, pair.refresh_token, refresh_s)
    _cookie(response, state, CSRF, csrf or secrets.token_urlsafe(32), refresh_s)


def keep_flow(response: Response, state: AppState, email: str) -> None:
    """The address a code was asked for, until the code is typed in."""
    _cookie(response, state, FLOW, email, 15 * 60)


def forget(response: Response) -> None:
    for name in (ACCESS, REFRESH, CSRF, FLOW):
        response.delete_cookie(name, path=PATH)


async def current(request: Request) -> PortalUser | None:
    state = state_of(request)
    access, refresh = request.cookies.get(ACCESS), request.cookies.get(REFRESH)
    csrf = request.cookies.get(CSRF, "")
    if not access or not refresh or not csrf:
        return None
    renewed = None
    try:
        claims = state.tokens.verify(access, audiences=[Audience.TENANT])
    except TenantryError:
        async with state.database.session(cross_tenant="portal refresh") as session:
            rotated = await sessions.rotate(session, state.settings, state.tokens, refresh)
        if isinstance(rotated, TenantryError):
            return None
        renewed = rotated
        claims = state.tokens.verify(rotated.access_token, audiences=[Audience.TENANT])
    try:
        state.trust.check(claims)
    except TenantryError:
        return None
    principal = Principal.from_claims(claims)
    if principal.tenant_id is None or principal.tenant_id in state.trust.suspended:
        return None
    return PortalUser(principal, csrf, renewed)


def csrf_ok(user: PortalUser, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(user.csrf, presented)
