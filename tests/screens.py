"""`make screens`: a screenshot of every hosted page into docs/screens/, from a fresh
`tenantry up` in Debian's Chromium (the README shows them)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

from tests.cli.test_servers import _env, running
from tests.fixtures.browser import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]
SCREENS = ROOT / "docs" / "screens"


async def capture(base_url: str) -> list[Path]:
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
        await page.get_by_label("Your work email").fill("ada@acme.example.com")
        await page.get_by_role("button", name="Send my code").click()
        await page.get_by_label("Code").fill("000000")
        await page.get_by_role("button", name="Verify").click()
        await shot("signup-code-wrong")
        await page.goto(f"{base_url}/activate?token=not-a-link")
        await shot("activation-link-invalid")
        await page.goto(f"{base_url}/status")
        await shot("status")
        await browser.close()
    return shots


def main() -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data_dir:
        env = _env(Path(data_dir), TENANTRY_BRAND_NAME="Acme Cloud")
        with running(["up"], env, Path(data_dir)) as (base_url, _):
            for path in asyncio.run(capture(base_url)):
                print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
