"""`/portal`: a tenant's owners and admins, signed in by email code, manage integration keys
and webhook endpoints. Every write is a form with the session's CSRF value; a member of
the tenant who is neither owner nor admin is shown what the portal is for, nothing more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import login, login_requests
from tenantry.auth.sessions import TokenPair
from tenantry.db import PlatformSession
from tenantry.errors import TenantryError
from tenantry.flag.guard import ensure_on
from tenantry.integration_key import service as keys
from tenantry.integration_key.service import SCOPES
from tenantry.invitation import service as invitations
from tenantry.invitation.schemas import InvitationCreate
from tenantry.models import Membership, Tenant
from tenantry.pages import PAGE_HEADERS, message_page, page
from tenantry.portal import auth
from tenantry.portal.auth import PortalUser
from tenantry.state import state_of
from tenantry.tenant import members
from tenantry.tenant import service as tenants
from tenantry.webhook import service as webhooks
from tenantry.webhook.schemas import EndpointCreate

pages = APIRouter(prefix="/portal", include_in_schema=False)
Outcome = Response | str  # a page to show, or the notice to go back to the view with
Action = Callable[[AsyncSession, PortalUser, dict[str, Any]], Awaitable[Outcome]]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


async def _fields(request: Request) -> dict[str, Any]:
    body = (await request.body()).decode("utf-8", errors="replace")
    fields: dict[str, Any] = {}
    for key, value in parse_qsl(body):
        if key == "scopes":
            fields.setdefault("scopes", []).append(value)
        else:
            fields[key] = value.strip()
    return fields


async def _view(
    request: Request, user: PortalUser, template: str, here: str, **context: Any
) -> Response:
    state = state_of(request)
    async with state.database.session(tenant_id=user.tenant_id) as session:
        tenant = await session.get(Tenant, user.tenant_id)
    response = page(
        request,
        template,
        tenant_name=tenant.name if tenant else user.tenant_id,
        csrf=user.csrf,
        here=here,
        notice=request.query_params.get("notice"),
        **context,
    )
    return user.finish(response, state)


def _not_for_you(request: Request, message: str, status: int = 403) -> HTMLResponse:
    return message_page(
        request,
        status,
        "Not available",
        message,
        next_url="/portal/sign-in",
        next_label="Sign in again",
    )


async def _manager(request: Request) -> PortalUser | Response:
    user = await auth.current(request)
    if user is None:
        return _see_other("/portal/sign-in")
    if not user.may_manage:
        return _not_for_you(request, "The portal is for the workspace's owners and admins.")
    return user


# -- signing in


def _why(refusal: TenantryError) -> str:
    """A sign-in refusal in words for people."""
    if refusal.code == "RATE_LIMITED":
        return "Too many tries from here: please wait a few minutes."
    if refusal.code == "FEATURE_DISABLED":
        return "Signing in is switched off for now; please try again later."
    if refusal.code == "VALIDATION":
        return "You belong to several workspaces: sign in to each from its own application."
    return "That code is not right, or it has expired: check it, or ask for a new one."


@pages.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> HTMLResponse:
    return page(request, "portal_sign_in.html.j2", step="email", error=None)


@pages.post("/sign-in", response_class=HTMLResponse)
async def sign_in_submit(request: Request, session: PlatformSession) -> Response:
    email = str((await _fields(request)).get("email", ""))[:320].lower()
    state = state_of(request)
    try:
        await login_requests.limit_asking(request, state.settings, email)
    except TenantryError as exc:
        return page(request, "portal_sign_in.html.j2", exc.status, step="email", error=_why(exc))
    await login.request_code(session, state.settings, email)
    redirect = _see_other("/portal/sign-in/code")
    auth.keep_flow(redirect, state, email)
    return redirect


@pages.get("/sign-in/code", response_class=HTMLResponse)
async def code_page(request: Request) -> HTMLResponse:
    return page(request, "portal_sign_in.html.j2", step="code", error=None)


@pages.post("/sign-in/code", response_class=HTMLResponse)
async def code_submit(request: Request, session: PlatformSession) -> Response:
    state = state_of(request)
    code = str((await _fields(request)).get("code", ""))[:6]
    email = request.cookies.get(auth.FLOW, "")
    try:
        result, _ = await login_requests.check_code(
            request, session, state.settings, email=email, code=code, tenant_id=None
        )
    except TenantryError as exc:
        result = exc
    if not isinstance(result, TokenPair):
        return page(request, "portal_sign_in.html.j2", 400, step="code", error=_why(result))
    redirect = _see_other("/portal/webhooks")
    auth.keep(redirect, state, result, None)
    return redirect


@pages.post("/sign-out")
async def sign_out(request: Request) -> Response:
    redirect = _see_other("/portal/sign-in")
    auth.forget(redirect)
    return redirect


# -- views


@pages.get("", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    return _see_other("/portal/webhooks")


@pages.get("/keys", response_class=HTMLResponse)
async def keys_view(request: Request) -> Response:
    user = await _manager(request)
    if isinstance(user, Response):
        return user
    async with state_of(request).database.session(tenant_id=user.tenant_id) as session:
        found = await keys.list_keys(session, user.tenant_id)
    return await _view(
        request, user, "portal_keys.html.j2", "/portal/keys", keys=found, scopes=sorted(SCOPES)
    )


@pages.get("/members", response_class=HTMLResponse)
async def members_view(request: Request) -> Response:
    user = await _manager(request)
    if isinstance(user, Response):
        return user
    async with state_of(request).database.session(tenant_id=user.tenant_id) as session:
        members = await tenants.list_members(session, user.tenant_id, after=None, limit=200)
        found = await invitations.list_invitations(session, user.tenant_id, limit=100)
    shown = [(invitation, invitations.effective_status(invitation)) for invitation in found]
    owner = "owner" in user.principal.roles
    return await _view(
        request,
        user,
        "portal_members.html.j2",
        "/portal/members",
        members=members,
        invitations=shown,
        me=user.principal.subject,
        roles=invitations.ROLES,
        invitable=("member", "admin", "owner") if owner else ("member", "admin"),
    )


@pages.get("/webhooks", response_class=HTMLResponse)
async def webhooks_view(request: Request) -> Response:
    user = await _manager(request)
    if isinstance(user, Response):
        return user
    async with state_of(request).database.session(tenant_id=user.tenant_id) as session:
        found = await webhooks.list_endpoints(session, user.tenant_id, limit=200)
    return await _view(
        request, user, "portal_webhooks.html.j2", "/portal/webhooks", endpoints=found
    )


@pages.get("/webhooks/{endpoint_id}", response_class=HTMLResponse)
async def webhook_view(endpoint_id: str, request: Request) -> Response:
    user = await _manager(request)
    if isinstance(user, Response):
        return user
    async with state_of(request).database.session(tenant_id=user.tenant_id) as session:
        try:
            endpoint = await webhooks.get_endpoint(session, endpoint_id, user.tenant_id)
        except TenantryError:
            return _not_for_you(request, "No such endpoint in this workspace.", 404)
        attempts = await webhooks.list_attempts(session, endpoint, limit=100)
    return await _view(
        request,
        user,
        "portal_webhook.html.j2",
        "/portal/webhooks",
        endpoint=endpoint,
        attempts=attempts,
    )


# -- actions


async def _act(request: Request, back: str, action: Action) -> Response:
    user = await _manager(request)
    if isinstance(user, Response):
        return user
    fields = await _fields(request)
    if not auth.csrf_ok(user, str(fields.get("csrf", ""))):
        return _not_for_you(request, "The form has expired or did not come from the portal.")
    state = state_of(request)
    try:
        async with state.database.session(tenant_id=user.tenant_id) as session:
            standing = await _standing(session, user)
            if standing is None:
                return _not_for_you(request, "You no longer manage this workspace.")
            outcome = await action(session, standing, fields)
    except TenantryError as exc:
        outcome = f"Not done: {exc.detail}"
    if isinstance(outcome, str):
        outcome = _see_other(f"{back}?{urlencode({'notice': outcome})}")
    return user.finish(outcome, state)


async def _standing(session: AsyncSession, user: PortalUser) -> PortalUser | None:
    """The caller as the database has them now, read under the tenant's row lock (as the
    API's writes that hand out access do): a role changed a second ago counts."""
    await session.execute(select(Tenant.id).where(Tenant.id == user.tenant_id).with_for_update())
    membership = await session.get(Membership, (user.tenant_id, user.principal.subject))
    if membership is None or membership.role not in auth.MANAGERS:
        return None
    principal = replace(user.principal, roles=frozenset({membership.role}))
    return replace(user, principal=principal)


def _secret_page(request: Request, user: PortalUser, what: str, secret: str, back: str) -> Response:
    return page(
        request,
        "portal_secret.html.j2",
        201,
        tenant_name="",
        csrf=user.csrf,
        here=back,
        notice=None,
        what=what,
        secret=secret,
        back=back,
    )


@pages.post("/keys")
async def create_key(request: Request) -> Response:
    async def create(session: AsyncSession, user: PortalUser, form: dict[str, Any]) -> Outcome:
        scopes = [scope for scope in form.get("scopes", []) if scope in SCOPES]
        name = str(form.get("name", ""))[:100]
        if not name or not scopes:
            return "Give the key a name and at least one scope."
        _, secret = await keys.create_key(
            session,
            state_of(request).settings,
            tenant_id=user.tenant_id,
            name=name,
            scopes=scopes,
            expires_at=None,
        )
        return _secret_page(request, user, "Key", secret, "/portal/keys")

    return await _act(request, "/portal/keys", create)


@pages.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: str, request: Request) -> Response:
    async def revoke(session: AsyncSession, user: PortalUser, _: dict[str, Any]) -> Outcome:
        key = await keys.revoke_key(
            session, state_of(request).settings, key_id, tenant_id=user.tenant_id
        )
        return f"{key.name} is revoked."

    return await _act(request, "/portal/keys", revoke)


@pages.post("/members/{user_id}/role")
async def change_role(user_id: str, request: Request) -> Response:
    async def change(session: AsyncSession, user: PortalUser, form: dict[str, Any]) -> Outcome:
        role = str(form.get("role", ""))
        if role not in invitations.ROLES:
            return "Choose owner, admin or member."
        settings = state_of(request).settings
        await members.change_role(session, settings, user.principal, user.tenant_id, user_id, role)
        return f"The role is {role} now."

    return await _act(request, "/portal/members", change)


@pages.post("/members/{user_id}/remove")
async def remove_member(user_id: str, request: Request) -> Response:
    async def remove(session: AsyncSession, user: PortalUser, _: dict[str, Any]) -> Outcome:
        settings = state_of(request).settings
        await members.remove(session, settings, user.principal, user.tenant_id, user_id)
        return "The member is removed; their access ends now."

    return await _act(request, "/portal/members", remove)


@pages.post("/invitations")
async def invite(request: Request) -> Response:
    async def create(session: AsyncSession, user: PortalUser, form: dict[str, Any]) -> Outcome:
        state = state_of(request)
        ensure_on(state.switches, "invitations")
        try:
            wanted = InvitationCreate(email=form.get("email", ""), role=form.get("role", ""))
        except ValueError:
            return "Give an email address and a role."
        if wanted.role == "owner" and "owner" not in user.principal.roles:
            return "Only an owner can invite an owner."
        await invitations.create(
            session,
            state.settings,
            tenant_id=user.tenant_id,
            email=str(wanted.email),
            role=wanted.role,
            invited_by=user.principal.subject,
        )
        return f"An invitation is on its way to {wanted.email}."

    return await _act(request, "/portal/members", create)


@pages.post("/invitations/{invitation_id}/revoke")
async def withdraw(invitation_id: str, request: Request) -> Response:
    async def revoke(session: AsyncSession, user: PortalUser, _: dict[str, Any]) -> Outcome:
        invitation = await invitations.get(session, invitation_id, tenant_id=user.tenant_id)
        await invitations.revoke(session, invitation)
        return f"The invitation of {invitation.email} is withdrawn."

    return await _act(request, "/portal/members", revoke)


@pages.post("/webhooks")
async def create_webhook(request: Request) -> Response:
    async def create(session: AsyncSession, user: PortalUser, form: dict[str, Any]) -> Outcome:
        state = state_of(request)
        try:
            wanted = EndpointCreate(
                url=str(form.get("url", "")),
                event_types=str(form.get("event_types", "")).split(),
            )
        except ValueError:
            return "Give a URL, and event types as exact names or prefix.*"
        _, secret = await webhooks.create_endpoint(
            session, state.settings, state.resolver, tenant_id=user.tenant_id, **wanted.model_dump()
        )
        return _secret_page(request, user, "Endpoint", secret, "/portal/webhooks")

    return await _act(request, "/portal/webhooks", create)


@pages.post("/webhooks/{endpoint_id}/messages/{message_id}/retry")
async def retry_message(endpoint_id: str, message_id: str, request: Request) -> Response:
    async def retry(session: AsyncSession, user: PortalUser, _: dict[str, Any]) -> Outcome:
        endpoint = await webhooks.get_endpoint(session, endpoint_id, user.tenant_id)
        await webhooks.retry_message(session, endpoint, message_id)
        return f"{message_id} goes again now."

    return await _act(request, f"/portal/webhooks/{endpoint_id}", retry)


@pages.post("/webhooks/{endpoint_id}/rotate")
async def rotate_secret(endpoint_id: str, request: Request) -> Response:
    async def rotate(session: AsyncSession, user: PortalUser, _: dict[str, Any]) -> Outcome:
        settings = state_of(request).settings
        endpoint = await webhooks.get_endpoint(session, endpoint_id, user.tenant_id)
        secret = await webhooks.rotate_secret(
            session, settings, endpoint, settings.webhook_rotation_grace
        )
        return _secret_page(request, user, "Secret", secret, f"/portal/webhooks/{endpoint_id}")

    return await _act(request, f"/portal/webhooks/{endpoint_id}", rotate)
