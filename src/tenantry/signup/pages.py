"""The hosted signup (`/signup`): form → code → provisioning progress → the host application.

Server-rendered and whole without JavaScript: every step is a form POST answered with a
redirect (303) or the same page with its errors beside their fields; the progress page
refreshes itself (`<meta http-equiv="refresh">`). The continuation token the code's
check returns never reaches the page: it rides in an HttpOnly, SameSite=Strict cookie
scoped to this signup's pages, and is spent for the hand-off code when the tenant is
ready (tenantry.signup.handoff). The forms create nothing a stranger could abuse (a
new signup, a code check, a re-send, each rate-limited), so they carry no CSRF token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db import PlatformSession
from tenantry.deps import LimiterDep, SettingsDep
from tenantry.errors import RateLimited, TenantryError
from tenantry.kit.clock import utcnow
from tenantry.kit.otp import OtpInvalid
from tenantry.models import SignupSession, SignupStatus
from tenantry.pages import PAGE_HEADERS, message_page, page
from tenantry.provisioning.service import checkpoints
from tenantry.signup import handoff, service
from tenantry.signup.requests import begin, check_code, resend
from tenantry.signup.schemas import SignupCreate
from tenantry.state import state_of

pages = APIRouter(include_in_schema=False)

COOKIE = "tenantry_signup"
REFRESH_S = 2
FIELDS = ("org_name", "slug", "email", "plan", "promo_code")
# What each field's validation error says, in words for people.
FIELD_HELP = {
    "org_name": "Enter your organisation's name.",
    "slug": "Use 3 to 40 lowercase letters, digits and single hyphens (not first or last).",
    "email": "Enter an email address we can send a code to.",
    "plan": "Choose a plan.",
    "promo_code": "A promo code is at most 64 characters.",
}
# Refusals that belong beside one field, in words for people.
FIELD_REFUSALS = {
    "SLUG_TAKEN": ("slug", "That address is taken: choose another."),
    "EMAIL_EXISTS": ("email", "This email already owns a workspace: sign in instead."),
    "INVALID_PROMO": ("promo_code", "That promo code is not valid (or no longer)."),
}
CODE_REFUSALS = {
    "OTP_EXPIRED": "That code has expired: ask for a new one below.",
    "OTP_LOCKED": "Too many wrong codes: ask for a new one below.",
}
STEP_LABELS = {
    "create_tenant": "Creating your workspace",
    "create_owner": "Setting up your account",
    "default_settings": "Applying default settings",
    "notify_host": "Connecting the application",
    "welcome_mail": "Sending your welcome mail",
}


async def _form_fields(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: value.strip() for key, value in parse_qsl(body)}


def _form(request: Request, settings: Any, status: int = 200, **context: Any) -> HTMLResponse:
    context = {"values": {}, "errors": {}, "problem": None, **context}
    return page(request, "signup_form.html.j2", status, plans=list(settings.plans), **context)


def _closed(request: Request, error: TenantryError) -> HTMLResponse:
    return message_page(
        request,
        error.status,
        "Signup is closed for now",
        "We are not taking new signups at the moment. Please try again later.",
        next_url=None,
    )


def _wait(error: RateLimited) -> str:
    seconds = int((error.headers or {}).get("Retry-After", "60"))
    return f"Too many tries from here: please wait {_duration(seconds)} and try again."


def _duration(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 120 else f"{round(seconds / 60)} minutes"


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


@pages.get("/signup", response_class=HTMLResponse)
async def signup_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        service.ensure_open(settings, state_of(request).switches)
    except TenantryError as exc:
        return _closed(request, exc)
    return _form(request, settings)


@pages.post("/signup", response_class=HTMLResponse)
async def signup_submit(
    request: Request, session: PlatformSession, settings: SettingsDep, limiter: LimiterDep
) -> Response:
    values = await _form_fields(request)
    given = {key: values[key] for key in FIELDS if values.get(key)}
    try:
        payload = SignupCreate.model_validate(given)
    except ValidationError as exc:
        return _form(request, settings, 400, values=values, errors=_field_errors(exc))
    try:
        started, _ = await begin(request, session, settings, limiter, payload)
    except RateLimited as exc:
        return _form(request, settings, 429, values=values, problem=_wait(exc))
    except TenantryError as exc:
        if exc.code == "SIGNUP_DISABLED":
            return _closed(request, exc)
        if exc.code not in FIELD_REFUSALS:
            raise
        field, message = FIELD_REFUSALS[exc.code]
        return _form(request, settings, exc.status, values=values, errors={field: message})
    return _see_other(f"/signup/{started.signup.id}")


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        reserved = "reserved" in str(error.get("msg", ""))
        message = "That address is reserved: choose another." if reserved else None
        errors.setdefault(field, message or FIELD_HELP.get(field, str(error["msg"])))
    return errors


@pages.get("/signup/{signup_id}", response_class=HTMLResponse)
async def code_page(
    signup_id: str, request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    signup = await _signup_or_none(session, signup_id)
    if signup is None or signup.status == SignupStatus.EXPIRED:
        return _gone(request)
    if signup.status != SignupStatus.PENDING_EMAIL_VERIFICATION:
        return _see_other(f"/signup/{signup_id}/progress")
    return _code(request, settings, signup)


def _code(
    request: Request, settings: Any, signup: SignupSession, status: int = 200, **context: Any
) -> HTMLResponse:
    sent = signup.last_code_sent_at
    cooldown = settings.signup_resend_cooldown
    left = (sent + cooldown - utcnow()).total_seconds() if sent else 0
    return page(
        request,
        "signup_code.html.j2",
        status,
        signup_id=signup.id,
        email=signup.email,
        code_minutes=int(settings.signup_code_ttl / timedelta(minutes=1)),
        cooldown_s=max(0, int(left)),
        **{"error": None, "notice": None, **context},
    )


def _gone(request: Request) -> HTMLResponse:
    return message_page(
        request,
        410,
        "This signup has expired",
        "Signups wait a day for their code. Start again: it takes a minute.",
        next_url="/signup",
        next_label="Start again",
    )


async def _signup_or_none(session: AsyncSession, signup_id: str) -> SignupSession | None:
    try:
        return await service.get_signup(session, signup_id)
    except TenantryError:
        return None


@pages.post("/signup/{signup_id}/verify", response_class=HTMLResponse)
async def code_submit(
    signup_id: str,
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
    limiter: LimiterDep,
) -> Response:
    signup = await _signup_or_none(session, signup_id)
    if signup is None:
        return _gone(request)
    code = (await _form_fields(request)).get("code", "")
    try:
        result, _ = await check_code(request, session, settings, limiter, signup_id, code)
    except RateLimited as exc:
        return _code(request, settings, signup, 429, error=_wait(exc))
    except TenantryError as exc:
        if exc.code == "SESSION_EXPIRED":
            return _gone(request)
        if exc.code not in CODE_REFUSALS:
            return _see_other(f"/signup/{signup_id}/progress")
        return _code(request, settings, signup, exc.status, error=CODE_REFUSALS[exc.code])
    if isinstance(result, OtpInvalid):
        left = result.extra.get("attempts_remaining", 0)
        error = f"That code is not right: {left} {'try' if left == 1 else 'tries'} left."
        return _code(request, settings, signup, 400, error=error)
    redirect = _see_other(f"/signup/{signup_id}/progress")
    redirect.set_cookie(
        COOKIE,
        result.continuation_token,
        max_age=int(settings.continuation_token_ttl.total_seconds()),
        path=f"/signup/{signup_id}",
        secure=settings.public_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )
    return redirect


@pages.post("/signup/{signup_id}/resend", response_class=HTMLResponse)
async def resend_submit(
    signup_id: str,
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
    limiter: LimiterDep,
) -> Response:
    signup = await _signup_or_none(session, signup_id)
    if signup is None:
        return _gone(request)
    try:
        signup, _ = await resend(request, session, settings, limiter, signup_id)
    except RateLimited as exc:
        return _code(request, settings, signup, 429, error=_wait(exc))
    except TenantryError:
        return _see_other(f"/signup/{signup_id}")
    return _code(request, settings, signup, notice=f"A new code is on its way to {signup.email}.")


@pages.get("/signup/{signup_id}/progress", response_class=HTMLResponse)
async def progress_page(
    signup_id: str, request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    signup = await _signup_or_none(session, signup_id)
    if signup is None or signup.status == SignupStatus.EXPIRED:
        return _gone(request)
    if signup.status == SignupStatus.PENDING_EMAIL_VERIFICATION:
        return _see_other(f"/signup/{signup_id}")
    if signup.status == SignupStatus.PROVISIONED:
        return await _ready(request, session, settings, signup)
    stopped = signup.status in (SignupStatus.REVIEW_REQUIRED, SignupStatus.FAILED)
    steps = [
        {
            "label": STEP_LABELS.get(c.name, c.name.replace("_", " ").capitalize()),
            "status": c.status,
        }
        for c in await checkpoints(session, signup_id)
    ]
    return message_page(
        request,
        200,
        "We hit a snag" if stopped else f"Setting up {signup.org_name}",
        (
            "Our team has been told and will finish setting up your workspace; we will email "
            "you when it is ready."
            if stopped
            else "This takes a few seconds. The page updates by itself."
        ),
        steps=steps,
        refresh=None if stopped else REFRESH_S,
        next_url=None,
    )


async def _ready(
    request: Request, session: AsyncSession, settings: Any, signup: SignupSession
) -> Response:
    """Off to the host application with a one-time code, from the browser that verified."""
    continuation = request.cookies.get(COOKIE)
    if continuation and settings.handoff_url:
        try:
            code = await handoff.issue(session, settings, signup.id, continuation)
        except TenantryError:
            pass  # spent or expired: this browser signs in like any other
        else:
            separator = "&" if "?" in settings.handoff_url else "?"
            redirect = _see_other(f"{settings.handoff_url}{separator}{urlencode({'code': code})}")
            redirect.delete_cookie(COOKIE, path=f"/signup/{signup.id}")
            return redirect
    onward = {"next_url": settings.handoff_url, "next_label": "Continue to the application"}
    return message_page(
        request,
        200,
        f"{signup.org_name} is ready",
        f"Sign in with {signup.email}: we send a code to that address.",
        **(onward if settings.handoff_url else {}),
    )
