"""Browser fixtures: Debian's Chromium driven by Playwright, never a downloaded browser.

Use them from a test module with `pytest_plugins = ["tests.browser"]` (this also registers the
hook that tells the `page` fixture whether the test failed, to save a screenshot then).
Fixtures: `browser` (module), `output_dir`, `page_log` and `page` (function).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "test-results"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ALLOW_ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"

_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_failed] = True
    return report


def chromium_path() -> Path:
    """Debian's Chromium, installed with apt if missing; fails the test if it cannot be had."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.fail(f"{CHROMIUM} is missing and there is no apt-get to install it", False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in ([apt, "update"], [apt, "install", "-y", "chromium"]):
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(
                f"{CHROMIUM} is missing and `{' '.join(args)}` failed "
                f"(exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}",
                False,
            )
    if not CHROMIUM.exists():
        pytest.fail(f"`apt-get install chromium` ran but {CHROMIUM} is still missing", False)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Playwright's sync API keeps an asyncio loop marked as
    running in this thread, which makes Django refuse the ORM (SynchronousOnlyOperation) in the
    test and its database fixtures; the ORM is allowed only while it runs, so that the tests
    of other modules keep Django's check."""
    executable = chromium_path()
    previous = os.environ.get(ALLOW_ASYNC_UNSAFE)
    os.environ[ALLOW_ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
            )
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop(ALLOW_ASYNC_UNSAFE, None)
        else:
            os.environ[ALLOW_ASYNC_UNSAFE] = previous


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """test-results/<test name>/ at the repository root, emptied at the start of the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.nodeid.replace("tests/", "", 1))
    directory = RESULTS / name.strip("-")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


@dataclass
class PageLog:
    """What the page reported that a user never should cause: console errors, uncaught
    exceptions and Content-Security-Policy violations."""

    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def unexpected(self, *allowed: str) -> list[str]:
        """The errors matching none of the `allowed` regular expressions (a missing favicon,
        which the browser asks for by itself, is always allowed)."""
        patterns = (r"404 \(Not Found\) \(\S+/favicon\.ico\)", *allowed)
        return [e for e in self.errors if not any(re.search(p, e) for p in patterns)]


# CSP violations do reach the console in Chromium, but only as text; this names them plainly.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


def new_page(browser: Browser, page_log: PageLog) -> Page:
    """A fresh desktop-sized page in a context of its own (a user of its own), its console
    errors and CSP violations logged to `page_log`; close it with `page.context.close()`."""
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    opened = context.new_page()
    opened.add_init_script(REPORT_CSP_VIOLATIONS)
    opened.on("console", page_log.console)
    opened.on("pageerror", page_log.page_error)
    return opened


@pytest.fixture
def page(
    browser: Browser, output_dir: Path, page_log: PageLog, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh page (new_page()); a screenshot is saved if the test fails."""
    opened = new_page(browser, page_log)
    yield opened
    if request.node.stash.get(_failed, False) and not opened.is_closed():
        opened.screenshot(path=output_dir / "failure.png", full_page=True)
        (output_dir / "failure.html").write_text(opened.content())
    opened.context.close()
