"""Real Chromium (Debian's package) driven by Playwright's async API."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Flags for a closed network: no background calls home, no sandbox as root in CI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: scripts/test installs it with apt-get as root")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Person:
    """One browser context (one person) with its console errors collected."""

    def __init__(self, context, page, base_url: str) -> None:
        self.context = context
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", self._on_dialog)

    async def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def register(self, name: str, password: str = "correct horse battery") -> None:
        await self._account_form("/register", "Register", name, password)

    async def log_in(self, name: str, password: str = "correct horse battery") -> None:
        await self._account_form("/login", "Log in", name, password)

    async def _account_form(self, path: str, button: str, name: str, password: str) -> None:
        page = self.page
        await page.goto(self.base_url + path)
        await page.get_by_label("Username").fill(name)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name=button).click()
        await page.wait_for_url(self.base_url + "/")
        await self.connected()

    async def connected(self) -> None:
        # By state, not by text: the text is translated.
        await self.page.wait_for_selector("#connection-state[data-state=connected]")

    async def say(self, text: str) -> None:
        box = self.page.get_by_label("Message")
        await box.fill(text)
        await box.press("Enter")


@pytest.fixture
async def people(browser, app) -> AsyncIterator:
    made: list[Person] = []

    async def person(locale: str = "en-US", **options) -> Person:
        """A new browser context; ``options`` go to ``new_context`` (viewport, ...)."""
        context = await browser.new_context(locale=locale, **options)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        made.append(Person(context, page, app.base_url))
        return made[-1]

    yield person
    for p in made:
        await p.context.close()
    for p in made:
        assert not p.errors, p.errors
        assert not p.dialogs, p.dialogs
