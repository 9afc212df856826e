"""Browser fixtures: Debian's Chromium driven by Playwright, one browser per test session.

Chromium comes from the system (`make deps-browser` installs the Debian package); Playwright's
own browser download is never used. Without /usr/bin/chromium the browser tests are skipped
with a message, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TANDEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Collected in the page, before any of its own scripts run.
_WATCH_SCRIPT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        message = (
            f"Chromium is not installed at {CHROMIUM}: run `make deps-browser` (as root, or in CI"
            " with sudo) to install Debian's chromium package"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (browser tests never skip in CI)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Watch:
    """What a page did that it never should: dialogs, CSP violations, uncaught errors."""

    dialogs: list[str] = field(default_factory=list)
    console_csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def csp_violations(self, page: Any) -> list[str]:
        in_page: list[str] = page.evaluate("window.__csp || []")
        return in_page + self.console_csp

    def assert_clean(self, page: Any) -> None:
        assert self.dialogs == [], f"unexpected dialogs: {self.dialogs}"
        assert self.csp_violations(page) == [], f"CSP violations: {self.csp_violations(page)}"
        assert self.errors == [], f"page errors: {self.errors}"


@dataclass
class Browsing:
    page: Any
    context: Any
    watch: Watch
    base_url: str

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def login(self, email: str, password: str, then: str = "/") -> None:
        """Log in with the keyboard, as a person would."""
        self.goto("/login?next=" + then)
        page = self.page
        page.get_by_test_id("login-email").fill(email)
        page.keyboard.press("Tab")
        page.keyboard.type(password)
        page.keyboard.press("Enter")
        page.wait_for_url(self.base_url + then)

    def screenshot(self, name: str) -> None:
        """Desktop and phone-width screenshots (test artifacts, not committed)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page = self.page
        size = page.viewport_size
        # The sticky action bar would be drawn mid-page in a full-page capture: unstick it.
        unstick = (
            "s => document.querySelectorAll('.ws-actions').forEach(e => { e.style.position = s; })"
        )
        page.evaluate("window.scrollTo(0, 0)")
        page.evaluate(unstick, "static")
        page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(50)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
        page.set_viewport_size(size)
        page.evaluate(unstick, "")


@pytest.fixture
def browsing(browser: Any, live_server: str) -> Iterator[Browsing]:
    context = browser.new_context(viewport=DESKTOP, base_url=live_server)
    context.add_init_script(_WATCH_SCRIPT)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch = Watch()

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(msg: Any) -> None:
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            watch.console_csp.append(msg.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    yield Browsing(page, context, watch, live_server)
    context.close()
