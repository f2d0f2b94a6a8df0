"""/docs and /redoc render in headless Chromium with the network cut: every request goes to
the Tenantry server, and the pages' CSP refuses nothing of theirs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.async_api import ConsoleMessage, Route, async_playwright

from tests.cli.test_servers import _env, running
from tests.fixtures.browser import CHROMIUM_ARGS

PAGES = {"/docs": ".swagger-ui .info .title", "/redoc": "h1"}


@pytest.mark.parametrize("path", sorted(PAGES))
async def test_the_api_docs_render_offline(path: str, chromium: str, tmp_path: Path) -> None:
    left: list[str] = []
    refused: list[str] = []

    async def local_only(route: Route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            left.append(route.request.url)
            await route.abort()

    def watch(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    with running(["up"], _env(tmp_path / "data"), tmp_path) as (base_url, _):
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.route("**/*", local_only)
                page.on("console", watch)
                response = await page.goto(f"{base_url}{path}")
                assert response is not None and response.status == 200
                title = page.locator(PAGES[path]).first
                await title.wait_for(timeout=20_000)
                assert "Tenantry" in await title.inner_text()
            finally:
                await browser.close()
    assert left == [], "the page asked for something outside the host"
    # The CSP refuses only what lies elsewhere (ReDoc's footer logo on its CDN): never one of
    # our own scripts or styles, inline or not.
    assert all("https://" in m and base_url not in m for m in refused), refused
