"""`make screens`: a screenshot of every hosted page into docs/screens/, from a fresh
`tenantry up` in Debian's Chromium (the README shows them)."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright

from tests.cli.test_servers import _env, running
from tests.conftest import TENANTRY
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS
from tests.fixtures.signup import mailed_code

ROOT = Path(__file__).resolve().parents[1]
OWNER = "ada@acme.example.com"
OPERATOR = "ops@acme.example.com"
SCREENS = ROOT / "docs" / "screens"


async def _sign_in(page: Page, url: str, label: str, email: str, data_dir: Path) -> None:
    before = mailed_code(data_dir, email)
    await page.goto(url)
    await page.get_by_label(label).fill(email)
    await page.get_by_role("button", name="Send me a code").click()
    await page.get_by_label("Code").fill(await _code(data_dir, email, newer_than=before))
    await page.get_by_role("button", name="Sign in").click()


async def _code(data_dir: Path, email: str, *, newer_than: str | None = None) -> str:
    for _ in range(200):
        code = mailed_code(data_dir, email)
        if code and code != newer_than:
            return code
        await asyncio.sleep(0.05)
    raise AssertionError(f"no new code mailed to {email}")


async def capture(base_url: str, data_dir: Path) -> list[Path]:
    shots = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 900, "height": 760})

        async def shot(name: str) -> None:
            shots.append(SCREENS / f"{name}.png")
            await page.screenshot(path=shots[-1], full_page=True)

        await page.goto(f"{base_url}/signup")
        await shot("signup-form")
        await page.get_by_label("Workspace address").fill("-bad-")
        await page.get_by_role("button", name="Send my code").click()
        await shot("signup-form-errors")
        await page.get_by_label("Organisation name").fill("Acme")
        await page.get_by_label("Workspace address").fill("acme")
        await page.get_by_label("Your work email").fill(OWNER)
        await page.get_by_role("button", name="Send my code").click()
        await page.get_by_label("Code").fill("000000")
        await page.get_by_role("button", name="Verify").click()
        await shot("signup-code-wrong")
        await page.get_by_label("Code").fill(await _code(data_dir, OWNER))
        await page.get_by_role("button", name="Verify").click()
        await page.get_by_role("heading", name="Acme is ready").wait_for(timeout=30_000)
        await shot("signup-ready")
        await page.goto(f"{base_url}/activate?token=not-a-link")
        await shot("activation-link-invalid")
        await page.goto(f"{base_url}/status")
        await shot("status")

        await _sign_in(page, f"{base_url}/console", "Operator email", OPERATOR, data_dir)
        for view in ("", "/sessions?status=PROVISIONED", "/tenants", "/funnel", "/jobs",
                     "/flags", "/audit"):  # fmt: skip
            await page.goto(f"{base_url}/console{view}")
            await shot("console" + (view.split("?")[0].replace("/", "-") or "-overview"))

        await _sign_in(page, f"{base_url}/portal", "Your email", OWNER, data_dir)
        for view in ("/members", "/keys", "/webhooks"):
            await page.goto(f"{base_url}/portal{view}")
            await shot("portal" + view.replace("/", "-"))
        await browser.close()
    return shots


def main() -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        env = _env(data_dir, TENANTRY_BRAND_NAME="Acme Cloud")
        for command in (["migrate"], ["operators", "add", OPERATOR, "--role", "admin"]):
            subprocess.run([TENANTRY, *command], env=env, check=True, capture_output=True)
        with running(["up"], env, data_dir) as (base_url, _):
            for path in asyncio.run(capture(base_url, data_dir)):
                print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
