"""What the browser tests share: Debian's Chromium under Playwright, an app on a free port, pages
whose script errors are kept, and screenshots in artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import ARTIFACTS, free_tcp_port

CHROMIUM = "/usr/bin/chromium"
# Root needs --no-sandbox; the closed network refuses Chromium's background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """``app`` on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_tcp_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def open_page(browser: Browser, errors: list, **context_options) -> Page:
    """A page in a browser context of its own (its own localStorage); its script errors go to
    ``errors``, for the test to assert there were none."""
    page = await (await browser.new_context(**context_options)).new_page()
    page.on("pageerror", lambda error: errors.append(error))  # Playwright wants a Python function
    return page


async def screenshot(page: Page, name: str) -> None:
    """The whole page, as artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
