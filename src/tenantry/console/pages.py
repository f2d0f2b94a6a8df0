"""`/console`: the operators' pages. Sign-in by email code; then views anyone signed in may
see, and actions only admins may take, each with a required reason, audited in the same
transaction, and refused without the form's CSRF value (the session cookie is HttpOnly and
SameSite=Strict besides)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit import trail
from tenantry.auth import login_requests
from tenantry.console import charts, service
from tenantry.console.service import SignedIn
from tenantry.db import PlatformSession
from tenantry.deps import SettingsDep
from tenantry.errors import TenantryError
from tenantry.flag import service as flags
from tenantry.job import service as jobs
from tenantry.kit.clock import utcnow
from tenantry.metrics import render_latest
from tenantry.models import JobStatus, SignupStatus
from tenantry.ops import funnel, slo
from tenantry.pages import PAGE_HEADERS, message_page, page
from tenantry.provisioning.service import checkpoints
from tenantry.signup import service as signups
from tenantry.tenant import service as tenants
from tenantry.webhook import service as webhooks

pages = APIRouter(prefix="/console", include_in_schema=False)

COOKIE = "tenantry_console"
FLOW_COOKIE = "tenantry_console_flow"
FUNNEL_DAYS = 7
STOPPED = (SignupStatus.REVIEW_REQUIRED, SignupStatus.FAILED, SignupStatus.EXPIRED)
Action = Callable[[AsyncSession, SignedIn, str, dict[str, str]], Awaitable[str]]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)


def _cookie(response: Response, name: str, value: str, settings: Any, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        secure=settings.public_url.startswith("https://"),
        httponly=True,
        samesite="strict",
    )


async def _fields(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: value.strip() for key, value in parse_qsl(body)}


async def _signed_in(request: Request, session: AsyncSession, settings: Any) -> SignedIn | None:
    token = request.cookies.get(COOKIE)
    return await service.signed_in(session, settings, token) if token else None


def _view(
    request: Request, settings: Any, who: SignedIn, template: str, here: str, **context: Any
) -> HTMLResponse:
    token = request.cookies.get(COOKIE, "")
    return page(
        request,
        template,
        operator=who.operator,
        admin=who.is_admin,
        csrf=service.csrf_token(settings, token),
        here=here,
        notice=request.query_params.get("notice"),
        problem=None,
        **context,
    )


# -- signing in


@pages.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> HTMLResponse:
    return page(request, "console_sign_in.html.j2", step="email", error=None)


@pages.post("/sign-in", response_class=HTMLResponse)
async def sign_in_submit(
    request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    email = (await _fields(request)).get("email", "")[:320]
    try:
        await login_requests.limit_asking(request, settings, email, gated=False)
    except TenantryError:
        error = "Too many tries from here: please wait a few minutes."
        return page(request, "console_sign_in.html.j2", 429, step="email", error=error)
    flow_id = await service.start_sign_in(session, settings, email)
    redirect = _see_other("/console/sign-in/code")
    _cookie(redirect, FLOW_COOKIE, flow_id, settings, int(service.CODE_TTL.total_seconds()))
    return redirect


@pages.get("/sign-in/code", response_class=HTMLResponse)
async def code_page(request: Request) -> HTMLResponse:
    return page(request, "console_sign_in.html.j2", step="code", error=None)


@pages.post("/sign-in/code", response_class=HTMLResponse)
async def code_submit(
    request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    code = (await _fields(request)).get("code", "")[:6]
    flow_id = request.cookies.get(FLOW_COOKIE, "")
    try:
        await login_requests.limit_trying(request, settings, gated=False)
    except TenantryError:
        error = "Too many tries from here: please wait a few minutes."
        return page(request, "console_sign_in.html.j2", 429, step="code", error=error)
    token = await service.verify_code(session, settings, flow_id, code) if flow_id else None
    if token is None:
        error = "That code is not right, or it has expired: check it, or ask for a new one."
        return page(request, "console_sign_in.html.j2", 400, step="code", error=error)
    redirect = _see_other("/console")
    _cookie(redirect, COOKIE, token, settings, int(service.SESSION_TTL.total_seconds()))
    redirect.delete_cookie(FLOW_COOKIE, path="/console")
    return redirect


# -- views


@pages.get("", response_class=HTMLResponse)
async def overview(request: Request, session: PlatformSession, settings: SettingsDep) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    counts = await signups.count_by_status(session)
    off = [state for state in await flags.flags(session) if not state.enabled]
    degraded = await flags.degraded(session)
    return _view(
        request,
        settings,
        who,
        "console_overview.html.j2",
        "/console",
        sessions=sorted(counts.items()),
        off=off + ([degraded] if degraded.enabled else []),
    )


@pages.get("/sessions", response_class=HTMLResponse)
async def sessions_view(
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
    status: Annotated[str, Query(max_length=40)] = SignupStatus.REVIEW_REQUIRED.value,
) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    chosen = SignupStatus(status) if status in set(SignupStatus) else None
    found = await signups.list_signups(session, status=chosen, limit=100)
    rows = []
    for signup in found:
        steps = await checkpoints(session, signup.id)
        rows.append(
            {
                "id": signup.id,
                "slug": signup.slug,
                "status": signup.status,
                "review_reason": signup.review_reason,
                "failure_reason": signup.failure_reason,
                "domain": signups.email_domain(signup.email),
                "updated_at": signup.updated_at,
                "steps": ", ".join(f"{c.name} {c.status}" for c in steps),
                "stopped": signup.status in STOPPED,
            }
        )
    return _view(
        request,
        settings,
        who,
        "console_sessions.html.j2",
        "/console/sessions",
        rows=rows,
        chosen=chosen.value if chosen else "",
        statuses=[s.value for s in SignupStatus],
    )


@pages.get("/jobs", response_class=HTMLResponse)
async def jobs_view(request: Request, session: PlatformSession, settings: SettingsDep) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    stats = await jobs.queue_stats(session)
    paused = await jobs.paused_queues(session)
    return _view(
        request,
        settings,
        who,
        "console_jobs.html.j2",
        "/console/jobs",
        stats=stats,
        queues=sorted({stat.queue for stat in stats} | set(paused)),
        paused=paused,
        failed=await jobs.list_jobs(session, status=JobStatus.FAILED, limit=100),
    )


@pages.get("/tenants", response_class=HTMLResponse)
async def tenants_view(
    request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    found = await tenants.list_tenants(session, limit=200)
    return _view(
        request, settings, who, "console_tenants.html.j2", "/console/tenants", tenants=found
    )


@pages.get("/tenants/{tenant_id}", response_class=HTMLResponse)
async def tenant_view(
    tenant_id: str, request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    try:
        tenant = await tenants.get_tenant(session, tenant_id)
    except TenantryError:
        return _refused(request, f"No tenant {tenant_id}.", 404)
    signup = await tenants.signup_of(session, tenant_id)
    endpoints = []
    for endpoint in await webhooks.list_endpoints(session, tenant_id, limit=50):
        failing = await webhooks.list_attempts(session, endpoint, status="failed", limit=20)
        endpoints.append((endpoint, failing))
    return _view(
        request,
        settings,
        who,
        "console_tenant.html.j2",
        "/console/tenants",
        tenant=tenant,
        members=await tenants.list_members(session, tenant_id, after=None, limit=200),
        steps=await checkpoints(session, signup.id) if signup else [],
        endpoints=endpoints,
    )


@pages.get("/funnel", response_class=HTMLResponse)
async def funnel_view(
    request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    until = utcnow()
    window = funnel.Window.checked(until - timedelta(days=FUNNEL_DAYS), until)
    report = await funnel.report(session, settings, window, funnel.Bucket.DAY)
    metrics, _ = render_latest()
    objectives = await slo.check(session, settings, metrics.decode())
    rows = [charts.Bar(s["type"].split(".", 1)[-1], s["count"]) for s in report["stages"]]
    chart = charts.bars("Activation funnel", rows, settings.brand_color)
    return _view(
        request,
        settings,
        who,
        "console_funnel.html.j2",
        "/console/funnel",
        days=FUNNEL_DAYS,
        funnel=report,
        chart=chart,
        slo=objectives,
    )


@pages.get("/flags", response_class=HTMLResponse)
async def flags_view(request: Request, session: PlatformSession, settings: SettingsDep) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    switches = [*await flags.flags(session), await flags.degraded(session)]
    return _view(
        request, settings, who, "console_flags.html.j2", "/console/flags", switches=switches
    )


@pages.get("/audit", response_class=HTMLResponse)
async def audit_view(request: Request, session: PlatformSession, settings: SettingsDep) -> Response:
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    records = await trail.list_records(session, limit=100)
    return _view(request, settings, who, "console_audit.html.j2", "/console/audit", records=records)


# -- actions


async def _act(
    request: Request, session: AsyncSession, settings: Any, back: str, action: Action
) -> Response:
    """An admin's action from a console form: signed in, the form's CSRF value, a reason;
    then the action (which records itself in the audit trail) and back to the view."""
    who = await _signed_in(request, session, settings)
    if who is None:
        return _see_other("/console/sign-in")
    fields = await _fields(request)
    token = request.cookies.get(COOKIE, "")
    if not service.csrf_matches(settings, token, fields.get("csrf", "")):
        return _refused(request, "The form has expired or did not come from the console.")
    if not who.is_admin:
        return _refused(request, f"Your role ({who.operator.role}) can see but not act.")
    reason = fields.get("reason", "")[:500]
    if not reason:
        return _see_other(f"{back}?{urlencode({'notice': 'Say why: the reason is required.'})}")
    try:
        notice = await action(session, who, reason, fields)
    except TenantryError as exc:
        notice = f"Not done: {exc.detail}"
    return _see_other(f"{back}?{urlencode({'notice': notice})}")


def _refused(request: Request, message: str, status: int = 403) -> HTMLResponse:
    return message_page(
        request,
        status,
        "Not allowed",
        message,
        next_url="/console",
        next_label="Back to the console",
    )


@pages.post("/sign-out")
async def sign_out(request: Request, session: PlatformSession, settings: SettingsDep) -> Response:
    who = await _signed_in(request, session, settings)
    fields = await _fields(request)
    token = request.cookies.get(COOKIE, "")
    if who is not None and service.csrf_matches(settings, token, fields.get("csrf", "")):
        await service.sign_out(session, who.flow)
    redirect = _see_other("/console/sign-in")
    redirect.delete_cookie(COOKIE, path="/console")
    return redirect


@pages.post("/sessions/{signup_id}/retry")
async def retry_session(
    signup_id: str, request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    async def retry(db: AsyncSession, who: SignedIn, reason: str, _: dict[str, str]) -> str:
        await signups.retry_provisioning(db, signup_id, by=who.actor, reason=reason)
        return f"{signup_id} is provisioning again."

    return await _act(request, session, settings, "/console/sessions", retry)


@pages.post("/sessions/{signup_id}/mark-complete")
async def mark_session_complete(
    signup_id: str, request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    async def complete(db: AsyncSession, who: SignedIn, reason: str, _: dict[str, str]) -> str:
        await signups.mark_complete(db, signup_id, reason=reason, by=who.actor)
        return f"{signup_id} is PROVISIONED."

    return await _act(request, session, settings, "/console/sessions", complete)


@pages.post("/jobs/{job_id}/retry")
async def retry_job(
    job_id: str, request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    async def retry(db: AsyncSession, who: SignedIn, reason: str, _: dict[str, str]) -> str:
        await jobs.retry_job(db, job_id)
        await trail.record(db, actor=who.actor, action="job.retry", target=job_id, reason=reason)
        return f"{job_id} is PENDING again."

    return await _act(request, session, settings, "/console/jobs", retry)


@pages.post("/tenants/{tenant_id}/{change}")
async def change_tenant(
    tenant_id: str,
    change: Literal["suspend", "reactivate"],
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
) -> Response:
    action = _suspension(tenant_id, change == "suspend")
    return await _act(request, session, settings, "/console/tenants", action)


def _suspension(tenant_id: str, suspended: bool) -> Action:
    async def change(db: AsyncSession, who: SignedIn, reason: str, _: dict[str, str]) -> str:
        await tenants.set_suspended(db, tenant_id, suspended, reason=reason, by=who.actor)
        return f"{tenant_id} is {'suspended' if suspended else 'active'}."

    return change


@pages.post("/queues/{name}/{change}")
async def change_queue(
    name: str,
    change: Literal["pause", "resume"],
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
) -> Response:
    return await _act(request, session, settings, "/console/jobs", _queue(name, change == "pause"))


def _queue(name: str, paused: bool) -> Action:
    async def change(db: AsyncSession, who: SignedIn, reason: str, _: dict[str, str]) -> str:
        await jobs.set_queue_paused(db, name, paused)
        action = "queue.pause" if paused else "queue.resume"
        await trail.record(db, actor=who.actor, action=action, target=name, reason=reason)
        return f"queue {name} is {'paused' if paused else 'running'}."

    return change


@pages.post("/tenants/{tenant_id}/webhooks/{endpoint_id}/messages/{message_id}/retry")
async def retry_webhook_message(
    tenant_id: str,
    endpoint_id: str,
    message_id: str,
    request: Request,
    session: PlatformSession,
    settings: SettingsDep,
) -> Response:
    async def retry(db: AsyncSession, who: SignedIn, reason: str, _: dict[str, str]) -> str:
        endpoint = await webhooks.get_endpoint(db, endpoint_id, tenant_id)
        await webhooks.retry_message(db, endpoint, message_id)
        await trail.record(
            db,
            actor=who.actor,
            action="webhook_endpoint.retry_message",
            target=endpoint_id,
            reason=reason,
            after={"message_id": message_id},
        )
        return f"{message_id} goes again now."

    return await _act(request, session, settings, f"/console/tenants/{tenant_id}", retry)


@pages.post("/flags/{name}")
async def set_switch(
    name: str, request: Request, session: PlatformSession, settings: SettingsDep
) -> Response:
    async def switch(db: AsyncSession, who: SignedIn, reason: str, form: dict[str, str]) -> str:
        enabled = form.get("enabled") == "on"
        if name == "degraded_mode":
            await flags.set_degraded(db, enabled, reason=reason, by=who.actor)
        else:
            await flags.set_flag(db, name, enabled, reason=reason, by=who.actor)
        return f"{name} is {'on' if enabled else 'off'}."

    return await _act(request, session, settings, "/console/flags", switch)
