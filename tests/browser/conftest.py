"""Browser fixtures: Debian's Chromium, driven by Playwright's sync API, against pytest-django's
live server.

The browser is the system one (``/usr/bin/chromium``); nothing is ever downloaded, and
``playwright install`` is never run. Each persona gets its own browser context (its own cookie
jar), with the locale of the run so Chromium sends the matching ``Accept-Language``.

The live server is plain http on loopback, yet the settings stay as in production (Secure
session, CSRF and language cookies): Chromium treats loopback as a secure context and keeps
Secure cookies there, so no ``override_settings`` is needed (the flow test asserts the flags).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Fail fast: a step that has not happened after this long is not going to.
ACTION_TIMEOUT_MS = 10_000
# Deciding an assessment renders PDFs in the same request (tasks run eagerly in tests).
NAVIGATION_TIMEOUT_MS = 45_000
LOCALES = {"ja": "ja-JP", "en": "en-US"}
PAGE_TEXT_LIMIT = 3000


JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def ui(message: str, language: str) -> str:
    """A UI string as the app renders it in ``language``, read from the compiled catalogue.

    Reading the wording from the catalogue keeps the tests true to whatever the translators
    chose; in Japanese it must really be translated, so a page that falls back to English (a
    missing or stale ``django.mo``, an untranslated msgid) fails the assertion that uses it.
    """
    with translation.override(language):
        text = translation.gettext(message)
    if language == "ja":
        missing = f"no Japanese translation for {message!r}: `make install` compiles django.mo"
        assert text != message, missing
        assert JAPANESE.search(text), missing
    return text


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright():
    """Playwright's sync API keeps an asyncio loop running in the test thread for as long as
    it is started, and Django refuses ORM calls from a thread with a running loop. The test
    code here is plain synchronous code (the loop only carries Playwright's messages), so the
    guard is lifted for this module only and restored afterwards for the rest of the suite."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def chromium(_orm_beside_playwright):
    """One Chromium process per module; Playwright (and its event loop) stops with it, so tests
    outside this package never run beside a live loop."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get).")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
    except PlaywrightError:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item, so fixtures can tell at teardown that it failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class Tab:
    """One persona's browser context and page, with assertions that explain themselves: on
    failure they save a screenshot under VAR_DIR and quote the page's text."""

    def __init__(self, context, page: Page, name: str, base_url: str, language: str, test: str):
        self.context = context
        self.page = page
        self.name = name
        self.base_url = base_url
        self.language = language
        self.test = test

    # --- diagnostics -----------------------------------------------------------------------
    def screenshot(self) -> Path | None:
        path = Path(settings.VAR_DIR) / f"browser-{self.test}-{self.name}.png"
        try:
            self.page.screenshot(path=str(path), full_page=True)
        except PlaywrightError:
            return None  # the page is gone; the message still carries the text we had
        return path

    def page_text(self) -> str:
        try:
            text = self.page.inner_text("body", timeout=2000)
        except PlaywrightError as exc:
            return f"(page text unavailable: {exc.message.splitlines()[0]})"
        return text[:PAGE_TEXT_LIMIT]

    def fail(self, message: str) -> AssertionError:
        shot = self.screenshot()
        return AssertionError(
            f"[{self.name}, {self.language}] {message}\n"
            f"URL: {self.page.url}\nScreenshot: {shot}\n--- page text ---\n{self.page_text()}"
        )

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise self.fail(message)

    # --- navigation ------------------------------------------------------------------------
    def open(self, path: str, status: int = 200):
        response = self.page.goto(self.base_url + path)
        self.check(response is not None, f"no response for {path}")
        self.check(
            response.status == status, f"GET {path} answered {response.status}, not {status}"
        )
        return response

    def click_and_wait(self, selector: str) -> None:
        """Click something that loads a new page (link or plain form) and wait for it."""
        with self.page.expect_navigation():
            self.page.locator(selector).click()

    def confirm_and_wait(self, selector: str, question: str) -> None:
        """Click a button guarded by ``window.confirm``, check the question and accept it."""
        asked: list[str] = []

        def accept(dialog):
            asked.append(dialog.message)
            dialog.accept()

        self.page.once("dialog", accept)
        with self.page.expect_navigation():
            self.page.locator(selector).click()
        self.check(asked == [question], f"expected confirm({question!r}), got {asked!r}")

    # --- assertions ------------------------------------------------------------------------
    def see(self, selector: str, text: str | None = None) -> None:
        """Wait until ``selector`` is visible (and contains ``text``)."""
        locator = self.page.locator(selector).first
        try:
            if text is None:
                expect(locator).to_be_visible()
            else:
                expect(locator).to_contain_text(text)
        except AssertionError as exc:
            raise self.fail(f"expected {selector!r} with {text!r}: {exc}") from None

    def see_class(self, selector: str, css_class: str) -> None:
        try:
            expect(self.page.locator(selector).first).to_have_class(
                re.compile(rf"(^|\s){re.escape(css_class)}(\s|$)")
            )
        except AssertionError as exc:
            raise self.fail(f"expected {selector!r} to have class {css_class!r}: {exc}") from None

    def absent(self, selector: str) -> None:
        try:
            expect(self.page.locator(selector)).to_have_count(0)
        except AssertionError as exc:
            raise self.fail(f"expected no {selector!r}: {exc}") from None

    def see_message(self, message: str) -> None:
        """A flash message rendered by the base template."""
        self.see("ul.messages", ui(message, self.language))

    def see_language(self) -> None:
        """The page was rendered in this tab's language."""
        lang = self.page.get_attribute("html", "lang")
        self.check(lang == self.language, f"<html lang={lang!r}>, expected {self.language!r}")

    # --- signing in ------------------------------------------------------------------------
    def login(self, username: str, password: str) -> None:
        self.open("/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        self.click_and_wait("form button[type=submit]")
        self.check(
            "/accounts/login/" not in self.page.url, f"signing in as {username} did not work"
        )

    def pass_mfa(self, user) -> None:
        """Type the authenticator's current code, computed from the user's confirmed device."""
        self.check(
            self.page.url.endswith("/accounts/mfa/verify/"),
            "expected the two-factor check after signing in",
        )
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        self.page.fill("#id_code", f"{totp.token():0{device.digits}d}")
        self.click_and_wait("form button[type=submit]")
        self.check("/accounts/mfa/" not in self.page.url, "the TOTP code was not accepted")


@pytest.fixture
def browse(request, chromium, live_server):
    """``browse(name, language)`` opens a fresh context for one persona; all are closed after
    the test, and every page is saved as a screenshot if the test failed."""
    tabs: list[Tab] = []
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def open_tab(name: str, language: str = "ja") -> Tab:
        context = chromium.new_context(locale=LOCALES[language])
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        tab = Tab(context, context.new_page(), name, live_server.url, language, test)
        tabs.append(tab)
        return tab

    yield open_tab
    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    for tab in tabs:
        if failed:
            tab.screenshot()
        tab.context.close()
