"""The operator console: sign-in by email code, the triage views, admins' actions with a
reason (each audited), CSRF, and support operators who see but cannot act. One run in
Chromium; the refusals through an HTTP client."""

from __future__ import annotations

import re
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import unquote_plus

import httpx
import pytest
from playwright.async_api import async_playwright
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.console import service
from tenantry.db import Database
from tenantry.models import AuditRecord, JobStatus, OperatorRole, SignupStatus
from tenantry.webhook import service as webhooks
from tenantry.webhook.addresses import SystemResolver
from tenantry.worker import queue, transitions
from tenantry.worker.queue import enqueue
from tests.cli.test_servers import _env, running
from tests.conftest import AppFactory
from tests.fixtures.axe import serious_violations, unreachable_by_keyboard
from tests.fixtures.browser import CHROMIUM_ARGS
from tests.fixtures.factories import create_member, create_signup, create_tenant, signup_now
from tests.fixtures.secrets import seen
from tests.fixtures.signup import mailed_secret
from tests.fixtures.workers import wait_for
from tests.webhook.conftest import deliveries, failed_delivery

ADMIN, SUPPORT = "ops@example.com", "helpdesk@example.com"


async def _operators(database: Database) -> None:
    async with database.session() as session:
        await service.add_operator(session, ADMIN, OperatorRole.ADMIN, by="test")
        await service.add_operator(session, SUPPORT, OperatorRole.SUPPORT, by="test")


async def _failed_job(database: Database) -> str:
    async with database.session() as session:
        job_id = await enqueue(session, "canary.ping", {}, tenant_id="ten_console")
    async with database.session() as session:
        (claimed,) = await transitions.claim(
            session, worker_id="w", limit=1, lease=timedelta(minutes=5)
        )
        outcome = queue.Outcome(claimed.id, claimed.attempts, JobStatus.FAILED, error="boom")
        await transitions.finish(session, worker_id="w", outcomes=[outcome])
    return job_id


async def _actions(database: Database) -> list[tuple[str, str, str, str | None]]:
    async with database.session() as session:
        records = (await session.execute(select(AuditRecord).order_by(AuditRecord.seq))).scalars()
        return [(r.actor, r.action, r.target, r.reason) for r in records]


async def sign_in(
    client: httpx.AsyncClient, database: Database, settings: Settings, email: str
) -> None:
    """Through the console's own forms, with the code from the outbox."""
    await client.post("/console/sign-in", data={"email": email})
    code = await mailed_secret(database, settings, email, "login_code", "code")
    answer = await client.post("/console/sign-in/code", data={"code": code})
    assert answer.status_code == 303 and answer.headers["location"] == "/console"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_an_admin_retries_a_session_and_a_job_and_closes_signup_in_the_browser(
    database: Database,
    signup_settings: Settings,
    chromium: str,
    axe_script: Path,
    tmp_path: Path,
) -> None:
    """…and axe-core finds nothing serious on any console page on the way."""
    await _operators(database)
    tenant = await create_tenant(database)
    stuck = await create_signup(
        database, status=SignupStatus.REVIEW_REQUIRED, tenant=tenant, review_reason="host down"
    )
    job_id = await _failed_job(database)
    env = _env(
        signup_settings.data_dir, TENANTRY_DATABASE_URL=signup_settings.resolved_database_url
    )
    with running(["serve"], env, tmp_path) as (base_url, _):
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context(bypass_csp=True)).new_page()
                findings = {}

                async def check() -> None:
                    findings[page.url] = await serious_violations(page, axe_script)
                    findings[page.url] += await unreachable_by_keyboard(page)

                await page.goto(f"{base_url}/console")
                await check()
                await page.get_by_label("Operator email").fill(ADMIN)
                await page.get_by_role("button", name="Send me a code").click()
                await page.get_by_label("Code").wait_for()

                async def mailed() -> bool:
                    try:
                        await mailed_secret(database, signup_settings, ADMIN, "login_code", "code")
                    except LookupError:
                        return False
                    return True

                await wait_for(mailed)
                code = await mailed_secret(database, signup_settings, ADMIN, "login_code", "code")
                await page.get_by_label("Code").fill(code)
                await page.get_by_role("button", name="Sign in").click()
                await page.get_by_role("heading", name="Overview").wait_for()
                await check()

                await page.get_by_role("link", name="Signups").click()
                row = page.get_by_role("row").filter(has_text=stuck.id)
                await row.get_by_label("Reason").first.fill("host is back")
                await row.get_by_role("button", name="Retry").click()
                await page.get_by_text(f"{stuck.id} is provisioning again.").wait_for()
                await check()

                await page.get_by_role("link", name="Jobs").click()
                row = page.get_by_role("row").filter(has_text=job_id)
                await row.get_by_label("Reason").fill("transient")
                await row.get_by_role("button", name="Retry").click()
                await page.get_by_text(f"{job_id} is PENDING again.").wait_for()
                await check()

                await page.get_by_role("link", name="Flags").click()
                row = page.get_by_role("row").filter(has_text="signup").first
                await row.get_by_label("Reason").fill("abuse wave")
                await row.get_by_role("button", name="Turn off signup").click()
                await page.get_by_text("signup is off.").wait_for()
                await check()
                await page.get_by_role("link", name="Audit trail").click()
                await check()

                await page.goto(f"{base_url}/signup")
                await page.get_by_role("heading", name="Signup is closed for now").wait_for(
                    timeout=5_000
                )
            finally:
                await browser.close()
    assert findings == {url: [] for url in findings} and len(findings) == 6
    actor = f"console:{ADMIN}"
    assert [a for a in await _actions(database) if a[0] == actor] == [
        (actor, "signup.retry", stuck.id, "host is back"),
        (actor, "job.retry", job_id, "transient"),
        (actor, "flag.set", "signup", "abuse wave"),
    ]


async def test_forms_without_their_csrf_value_and_support_operators_are_refused(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    await _operators(database)
    job_id = await _failed_job(database)
    async with client_for(signup_settings) as admin, client_for(signup_settings) as support:
        await sign_in(admin, database, signup_settings, ADMIN)
        forged = await admin.post(f"/console/jobs/{job_id}/retry", data={"reason": "x"})
        assert forged.status_code == 403 and "did not come from the console" in forged.text

        await sign_in(support, database, signup_settings, SUPPORT)
        jobs_page = await support.get("/console/jobs")
        assert jobs_page.status_code == 200 and job_id in jobs_page.text
        assert "Reason" not in jobs_page.text  # no action forms for support
        refused = await support.post(
            f"/console/jobs/{job_id}/retry", data={"reason": "x", "csrf": _csrf(jobs_page.text)}
        )
        assert refused.status_code == 403 and "can see but not act" in refused.text

        no_reason = await admin.post(
            f"/console/jobs/{job_id}/retry",
            data={"reason": "", "csrf": _csrf((await admin.get("/console/jobs")).text)},
        )
        assert "reason is required" in no_reason.headers["location"].replace("+", " ")
    assert not [a for a in await _actions(database) if a[1] == "job.retry"]


async def test_signing_in_tells_nobody_who_the_operators_are_and_five_wrong_codes_end_it(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    await _operators(database)
    async with client_for(signup_settings) as client:
        stranger = await client.post("/console/sign-in", data={"email": "who@example.com"})
        operator = await client.post("/console/sign-in", data={"email": ADMIN})
        assert stranger.status_code == operator.status_code == 303
        assert stranger.headers["location"] == operator.headers["location"]
        code = await mailed_secret(database, signup_settings, ADMIN, "login_code", "code")
        for _ in range(5):
            wrong = await client.post("/console/sign-in/code", data={"code": "000000"})
            assert wrong.status_code == 400
        late = await client.post("/console/sign-in/code", data={"code": code})
        assert late.status_code == 400  # the flow ended with the fifth wrong code
        assert (await client.get("/console")).headers["location"] == "/console/sign-in"
    seen(code)


async def test_tenants_queues_funnel_and_a_tenants_webhooks(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    await _operators(database)
    tenant = await create_tenant(database, name="Acme")
    async with client_for(signup_settings) as admin:
        await sign_in(admin, database, signup_settings, ADMIN)
        listed = await admin.get("/console/tenants")
        assert listed.status_code == 200 and "Acme" in listed.text
        csrf = _csrf(listed.text)
        suspended = await admin.post(
            f"/console/tenants/{tenant.id}/suspend", data={"reason": "unpaid", "csrf": csrf}
        )
        assert "suspended" in suspended.headers["location"]
        paused = await admin.post(
            "/console/queues/mail/pause", data={"reason": "smtp outage", "csrf": csrf}
        )
        assert "paused" in paused.headers["location"]
        jobs_page = await admin.get("/console/jobs")
        assert "Resume mail" in jobs_page.text
        funnel = await admin.get("/console/funnel")
        assert funnel.status_code == 200
        assert '<svg role="img"' in funnel.text and "SignupStarted" in funnel.text
        detail = await admin.get(f"/console/tenants/{tenant.id}")
        assert detail.status_code == 200 and "suspended" in detail.text
        assert (await admin.get("/console/tenants/ten_nope")).status_code == 404
    actions = [(a[1], a[2], a[3]) for a in await _actions(database) if a[0] == f"console:{ADMIN}"]
    assert actions == [
        ("tenant.suspend", tenant.id, "unpaid"),
        ("queue.pause", "mail", "smtp outage"),
    ]


async def test_an_admin_sends_a_tenants_failed_webhook_message_again(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    await _operators(database)
    tenant = await create_tenant(database)
    allowed = signup_settings.model_copy(
        update={"webhook_allowed_networks": [ip_network("127.0.0.0/8")]}
    )
    async with database.session() as session:
        endpoint, secret = await webhooks.create_endpoint(
            session, allowed, SystemResolver(), tenant_id=tenant.id, url="http://127.0.0.1:9/",
            description="", event_types=[], enabled=True, rate_limit_per_s=None,
        )  # fmt: skip
    seen(secret)
    message_id = await failed_delivery(database, tenant.id, endpoint.id)
    async with client_for(signup_settings) as admin:
        await sign_in(admin, database, signup_settings, ADMIN)
        detail = await admin.get(f"/console/tenants/{tenant.id}")
        assert message_id in detail.text and "503" in detail.text
        sent = await admin.post(
            f"/console/tenants/{tenant.id}/webhooks/{endpoint.id}/messages/{message_id}/retry",
            data={"reason": "receiver fixed", "csrf": _csrf(detail.text)},
        )
        assert "goes again now" in sent.headers["location"].replace("+", " ")
    (delivery,) = await deliveries(database)
    assert (delivery.status, delivery.trigger) == ("pending", "manual")
    assert (
        f"console:{ADMIN}",
        "webhook_endpoint.retry_message",
        endpoint.id,
        "receiver fixed",
    ) in (await _actions(database))


async def test_an_admin_marks_a_stopped_signup_complete_when_its_work_is_done(
    client_for: AppFactory, database: Database, signup_settings: Settings
) -> None:
    await _operators(database)
    tenant = await create_tenant(database)
    signup = await create_signup(
        database, status=SignupStatus.FAILED, tenant=tenant, failure_reason="mail step broke"
    )
    await create_member(database, tenant.id, "owner", email=signup.email)
    async with client_for(signup_settings) as admin:
        await sign_in(admin, database, signup_settings, ADMIN)
        listed = await admin.get("/console/sessions", params={"status": "FAILED"})
        assert signup.id in listed.text and "mail step broke" in listed.text
        done = await admin.post(
            f"/console/sessions/{signup.id}/mark-complete",
            data={"reason": "welcome mail sent by hand", "csrf": _csrf(listed.text)},
        )
        assert "PROVISIONED" in unquote_plus(done.headers["location"])
    assert (await signup_now(database, signup.id)).status == SignupStatus.PROVISIONED
    assert (
        f"console:{ADMIN}",
        "signup.mark_complete",
        signup.id,
        "welcome mail sent by hand",
    ) in await _actions(database)
