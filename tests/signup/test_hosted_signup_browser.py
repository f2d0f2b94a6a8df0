"""The hosted signup in a real browser (Debian's Chromium, driven by Playwright), with
JavaScript on and off, against `tenantry up`: the form, its errors beside their fields,
the mailed code, the progress page, and the hand-off to the host application with a code
that exchanges once; axe-core finds nothing serious, and the keyboard alone suffices."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from tenantry.config import Settings
from tests.cli.test_servers import _env, running
from tests.fixtures.axe import serious_violations, unreachable_by_keyboard
from tests.fixtures.browser import CHROMIUM_ARGS
from tests.fixtures.secrets import seen
from tests.fixtures.servers import free_port
from tests.fixtures.signup import mailed_code
from tests.fixtures.workers import wait_for

EMAIL = "ada@acme.example.com"


class Host:
    """The host application's landing URL: it takes the code from the query and says so."""

    def __init__(self) -> None:
        self.codes: list[str] = []
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/landing"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Landing(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.codes += parse_qs(urlsplit(self.path).query).get("code", [])
                body = b"<!doctype html><title>Host</title><h1>Welcome to the host</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        return Landing


@pytest.fixture
def host() -> Iterator[Host]:
    host = Host()
    server = ThreadingHTTPServer(("127.0.0.1", host.port), host.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()


async def _code(data_dir: Path) -> str:
    async def mailed() -> bool:
        return mailed_code(data_dir, EMAIL) is not None

    await wait_for(mailed)
    code = mailed_code(data_dir, EMAIL)
    assert code is not None
    return code


async def _fill_form(page: Page, slug: str) -> None:
    await page.get_by_label("Organisation name").fill("Acme")
    await page.get_by_label("Workspace address").fill(slug)
    await page.get_by_label("Your work email").fill(EMAIL)
    await page.get_by_label("Plan").select_option("starter")
    await page.get_by_role("button", name="Send my code").click()


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_person_signs_up_and_lands_in_the_host_with_a_code_that_works_once(
    javascript: bool,
    signup_settings: Settings,
    chromium: str,
    host: Host,
    tmp_path: Path,
) -> None:
    data_dir = signup_settings.data_dir
    env = _env(
        data_dir,
        TENANTRY_DATABASE_URL=signup_settings.resolved_database_url,
        TENANTRY_HANDOFF_URL=host.url,
        TENANTRY_BRAND_NAME="Acme Cloud",
        TENANTRY_BRAND_COLOR="#7a1fa2",
    )
    with running(["up"], env, tmp_path) as (base_url, _):
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(java_script_enabled=javascript)
                page = await context.new_page()
                await page.goto(f"{base_url}/signup")
                assert await page.title() == "Create your workspace · Acme Cloud"

                await _fill_form(page, "-bad-")  # the error is told beside its field
                slug_error = page.locator("#slug-error")
                await slug_error.wait_for()
                assert "lowercase letters" in await slug_error.inner_text()
                assert await page.get_by_label("Organisation name").input_value() == "Acme"

                await _fill_form(page, "acme")
                await page.get_by_role("heading", name="Check your email").wait_for()
                await page.get_by_label("Code").fill("000000")
                await page.get_by_role("button", name="Verify").click()
                await page.get_by_text("That code is not right: 4 tries left.").wait_for()

                await page.get_by_label("Code").fill(await _code(data_dir))
                await page.get_by_role("button", name="Verify").click()
                # The progress page refreshes itself until the tenant is ready, then hands off.
                await page.get_by_role("heading", name="Welcome to the host").wait_for(
                    timeout=30_000
                )
            finally:
                await browser.close()
        (code,) = host.codes
        seen(code)
        grant = {"grant_type": "authorization_code", "code": code}
        async with httpx.AsyncClient(base_url=base_url) as client:
            first = await client.post("/v1/auth/token", data=grant)
            again = await client.post("/v1/auth/token", data=grant)
    assert first.status_code == 200, first.text
    seen(first.json()["access_token"])
    seen(first.json()["refresh_token"])
    assert first.json()["tenant_id"].startswith("ten_")
    assert again.status_code == 401 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_pages_pass_axe_and_work_from_the_keyboard_alone(
    signup_settings: Settings, chromium: str, axe_script: Path, tmp_path: Path
) -> None:
    """Every hosted signup page (the form, its errors, the code page, a wrong code, the ready
    page) has no serious or critical axe-core finding; the whole signup goes by keyboard."""
    data_dir = signup_settings.data_dir
    env = _env(data_dir, TENANTRY_DATABASE_URL=signup_settings.resolved_database_url)
    findings: dict[str, list[dict[str, Any]]] = {}
    with running(["up"], env, tmp_path) as (base_url, _):
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context(bypass_csp=True)).new_page()

                async def check(name: str) -> None:
                    findings[name] = await serious_violations(page, axe_script)
                    findings[name] += await unreachable_by_keyboard(page)

                await page.goto(f"{base_url}/signup")
                # Keyboard only: Tab walks the fields in reading order, Enter submits.
                order = []
                for _ in range(6):
                    await page.keyboard.press("Tab")
                    order.append(
                        await page.evaluate(
                            "document.activeElement.id || document.activeElement.textContent"
                        )
                    )
                assert order == ["org_name", "slug", "email", "plan", "promo_code", "Send my code"]
                await check("form")
                await page.keyboard.press("Enter")  # empty: every required field says so
                await page.locator("#org_name-error").wait_for()
                await check("form with errors")
                await page.get_by_label("Organisation name").focus()
                for text in ("Acme", "acme", EMAIL):
                    await page.keyboard.press("Control+A")
                    await page.keyboard.type(text)
                    await page.keyboard.press("Tab")
                await page.keyboard.press("Tab")  # past the plan, to the promo code
                await page.keyboard.press("Enter")  # submits, as Enter in a text field does
                await page.get_by_role("heading", name="Check your email").wait_for()
                await check("code")
                await page.get_by_label("Code").focus()
                await page.keyboard.type("000000")
                await page.keyboard.press("Enter")
                await page.get_by_role("alert").wait_for()
                await check("wrong code")
                await page.get_by_label("Code").focus()
                await page.keyboard.type(await _code(data_dir))
                await page.keyboard.press("Enter")
                await page.get_by_role("heading", name="Acme is ready").wait_for(timeout=30_000)
                await check("ready")
            finally:
                await browser.close()
    assert findings == {name: [] for name in findings}
    assert len(findings) == 5
