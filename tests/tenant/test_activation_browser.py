"""The activation page in a real browser: Debian's Chromium, headless, driven by Playwright,
against a `tenantry serve` process on the test's database."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import async_playwright
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.db import Database
from tenantry.models import Invitation
from tests.cli.test_servers import _env, running
from tests.fixtures.axe import serious_violations, unreachable_by_keyboard
from tests.fixtures.browser import CHROMIUM_ARGS
from tests.fixtures.signup import invitation_token
from tests.tenant.conftest import auth


async def status_of(database: Database) -> str:
    async with database.session() as session:
        return str((await session.execute(select(Invitation.status))).scalar_one())


async def test_a_person_activates_in_the_browser(
    api: httpx.AsyncClient,
    owner: dict[str, str],
    database: Database,
    signup_settings: Settings,
    chromium: str,
    axe_script: Path,
    tmp_path: Path,
) -> None:
    """…and axe-core finds nothing serious on its pages, Tab reaching every control."""
    invited = await api.post(
        f"/v1/tenants/{owner['tenant_id']}/invitations",
        json={"email": "bea@acme.example.com", "role": "member"},
        headers=auth(owner["access_token"]),
    )
    assert invited.status_code == 201
    token = await invitation_token(database, signup_settings, "bea@acme.example.com")
    env = _env(signup_settings.data_dir, TENANTRY_DATABASE_URL=signup_settings.database_url or "")
    with running(["serve"], env, tmp_path) as (base_url, _):
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context(bypass_csp=True)).new_page()
                findings = {}

                async def check(name: str) -> None:
                    findings[name] = await serious_violations(page, axe_script)
                    findings[name] += await unreachable_by_keyboard(page)

                response = await page.goto(f"{base_url}/activate?token={token}")
                assert response is not None and response.status == 200
                await page.get_by_role("heading", name="Join Acme").wait_for()
                assert await status_of(database) == "pending"  # looking changes nothing
                await check("form")

                await page.get_by_label("Your name").fill("Bea")
                await page.get_by_label("Password").fill("correct horse battery")
                await page.get_by_role("button", name="Join Acme").click()
                await page.get_by_role("heading", name="Welcome to Acme").wait_for()
                assert "bea@acme.example.com" in await page.content()
                await check("welcome")
                await page.goto(f"{base_url}/activate?token={token}")
                await page.get_by_role("heading", name="already been used").wait_for()
                await check("used")
                await page.goto(f"{base_url}/status")
                await check("status")
            finally:
                await browser.close()
    assert await status_of(database) == "accepted"
    assert findings == {"form": [], "welcome": [], "used": [], "status": []}
