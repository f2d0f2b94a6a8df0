"""Invitations over HTTP: the tenant's management routes, the public lookup and accept, and
the hosted activation page (`/activate`), which only its form's POST can consume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from sqlalchemy import select

from tenantry.auth.access import InvitationManager, InvitationReader, deny
from tenantry.auth.schemas import SessionTokens
from tenantry.db import DbReader, DbSession, PlatformSession
from tenantry.errors import TenantryError, TokenUsed
from tenantry.flag.guard import feature
from tenantry.invitation import guard, service
from tenantry.invitation.schemas import (
    InvitationAccept,
    InvitationCreate,
    InvitationLookup,
    InvitationRead,
)
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.pagination import Page, PageQuery, page_of
from tenantry.models import Invitation, InvitationStatus, User
from tenantry.openapi import problems
from tenantry.pages import page
from tenantry.state import state_of

router = APIRouter(prefix="/v1/tenants/{tenant_id}/invitations", tags=["invitations"])
public = APIRouter(prefix="/v1/invitations", tags=["invitations"])
pages = APIRouter(include_in_schema=False)

LINK_ERRORS = (service.TokenInvalid, service.LinkExpired, service.LinkRevoked, TokenUsed)
T = TypeVar("T")


def _read(invitation: Invitation) -> dict[str, Any]:
    return InvitationRead(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        status=service.effective_status(invitation),
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        invited_by=invitation.invited_by,
    ).model_dump(mode="json")


@router.post(
    "",
    dependencies=[feature("invitations")],
    responses=problems(409),
    status_code=201,
    response_model=InvitationRead,
    summary="Invite someone",
)
async def create_invitation(
    tenant_id: str,
    payload: InvitationCreate,
    principal: InvitationManager,
    request: Request,
    session: DbSession,
    idempotency: Idempotency,
) -> JSONResponse:
    if payload.role == "owner" and "owner" not in principal.roles:
        raise deny(request, principal, "role_mismatch", "Only an owner can invite an owner")
    if replay := await idempotency.replay(session, tenant_id, payload.model_dump(mode="json")):
        return replay
    invitation = await service.create(
        session,
        state_of(request).settings,
        tenant_id=tenant_id,
        email=str(payload.email),
        role=payload.role,
        invited_by=principal.subject,
    )
    return await idempotency.remember(session, 201, _read(invitation))


@router.get(
    "", response_model=Page[InvitationRead], summary="The tenant's invitations, newest first"
)
async def list_invitations(
    tenant_id: str,
    _: InvitationReader,
    session: DbReader,
    page: PageQuery,
    status: InvitationStatus | None = None,
) -> dict[str, Any]:
    rows = await service.list_invitations(
        session, tenant_id, status=status, after=page.after, limit=page.limit + 1
    )
    return page_of(list(rows), page.limit, _read)


@router.post(
    "/{invitation_id}/resend",
    dependencies=[feature("invitations")],
    responses=problems(409),
    response_model=InvitationRead,
    summary="A new link",
)
async def resend_invitation(
    tenant_id: str,
    invitation_id: str,
    _: InvitationManager,
    request: Request,
    session: DbSession,
) -> dict[str, Any]:
    invitation = await service.get(session, invitation_id, tenant_id=tenant_id)
    return _read(await service.resend(session, state_of(request).settings, invitation))


@router.post(
    "/{invitation_id}/revoke",
    responses=problems(409),
    response_model=InvitationRead,
    summary="Withdraw it",
)
async def revoke_invitation(
    tenant_id: str, invitation_id: str, _: InvitationManager, session: DbSession
) -> dict[str, Any]:
    invitation = await service.get(session, invitation_id, tenant_id=tenant_id)
    return _read(await service.revoke(session, invitation))


async def _watched(request: Request, action: Callable[[], Awaitable[T]]) -> T:
    """Run a link check under the brute-force watch."""
    await guard.admit(request)
    try:
        return await action()
    except LINK_ERRORS as exc:
        await guard.failed(request, exc)
        raise


@public.get(
    "/lookup",
    responses=problems(410, 429),
    response_model=InvitationLookup,
    summary="What a link invites to",
)
async def lookup(
    request: Request,
    session: PlatformSession,
    token: Annotated[str, Query(min_length=1, max_length=200)],
) -> InvitationLookup:
    invitation = await _watched(
        request, lambda: service.find(session, state_of(request).settings, token)
    )
    return await _lookup(session, invitation)


async def _lookup(session: PlatformSession, invitation: Invitation) -> InvitationLookup:
    tenant = await service.tenant_of(session, invitation)
    return InvitationLookup(
        tenant_name=tenant.name,
        email=invitation.email,
        role=invitation.role,
        status=service.effective_status(invitation),
        expires_at=invitation.expires_at,
    )


async def _accept(
    request: Request, session: PlatformSession, form: InvitationAccept
) -> service.Accepted:
    state = state_of(request)
    return await _watched(
        request,
        lambda: service.accept(
            session,
            state.settings,
            state.tokens,
            form.token,
            name=form.name,
            password=form.password,
        ),
    )


@public.post(
    "/accept",
    responses=problems(409, 410, 429),
    response_model=SessionTokens,
    summary="Spend the link: join the tenant and get its tokens",
)
async def accept(
    payload: InvitationAccept, request: Request, session: PlatformSession
) -> JSONResponse:
    accepted = await _accept(request, session, payload)
    return JSONResponse(accepted.tokens.to_response(), headers={"Cache-Control": "no-store"})


def _problem_page(request: Request, error: TenantryError) -> HTMLResponse:
    return page(
        request,
        "link_problem.html.j2",
        error.status,
        title=error.title,
        detail=error.detail,
        code=error.code,
    )


async def _form(
    request: Request, session: PlatformSession, invitation: Invitation, **extra: Any
) -> HTMLResponse:
    found = await _lookup(session, invitation)
    user = await session.scalar(select(User.id).where(User.email == invitation.email))
    context = {
        "tenant_name": found.tenant_name,
        "email": found.email,
        "role": found.role,
        "new_user": user is None,
        "name": "",
        "error": None,
        **extra,
    }
    return page(request, "activate.html.j2", 200 if not extra.get("error") else 400, **context)


@pages.get("/activate", response_class=HTMLResponse)
async def activation_page(
    request: Request,
    session: PlatformSession,
    token: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """Shows the invitation and its form; opening it (a mail scanner does) changes nothing."""
    try:
        invitation = await _watched(
            request, lambda: service.find(session, state_of(request).settings, token)
        )
    except TenantryError as exc:
        return _problem_page(request, exc)
    return await _form(request, session, invitation, token=token)


@pages.post("/activate", response_class=HTMLResponse)
async def activate(request: Request, session: PlatformSession) -> HTMLResponse:
    """The form's POST: the only way the page consumes its link."""
    fields = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
    token, name, password = (fields.get(key, "") for key in ("token", "name", "password"))
    state = state_of(request)
    try:
        invitation = await _watched(request, lambda: service.find(session, state.settings, token))
    except TenantryError as exc:
        return _problem_page(request, exc)
    try:
        form = InvitationAccept(token=token, name=name, password=password or None)
    except ValidationError as exc:
        invalid = {str(e["loc"][0]) for e in exc.errors()}
        error = (
            "The password needs at least 12 characters (or leave it empty)."
            if "password" in invalid
            else "Please enter your name."
        )
        return await _form(request, session, invitation, token=token, name=name, error=error)
    try:
        accepted = await _accept(request, session, form)
    except TenantryError as exc:
        return _problem_page(request, exc)
    return page(
        request,
        "activated.html.j2",
        tenant_name=accepted.tenant.name,
        email=accepted.invitation.email,
        role=accepted.invitation.role,
    )
