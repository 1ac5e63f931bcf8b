"""Every page in Debian's Chromium under the site's CSP: its scripts are ES modules from the
site's own files, they run (the page's live parts come up), and nothing is blocked or logged
as an error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, expect

from tests.processes import Process, Processes

if TYPE_CHECKING:
    # Imported by pytest_plugins below; importing it here first would stop pytest from
    # registering it as a plugin with assertion rewriting.
    from tests.browser import PageLog

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A classic script, or inline code of any kind; the one inline <script> allowed holds JSON.
NOT_A_MODULE = "script:not([type=module]):not([type='application/json'])"


def open_page(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None, url
    assert response.ok, url
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, policy
    assert "unsafe-inline" not in policy, policy
    expect(page.locator(NOT_A_MODULE)).to_have_count(0)
    expect(page.locator("script#wire[type='application/json']")).to_have_count(1)


@pytest.fixture
def web(processes: Processes) -> Process:
    return processes.runserver("web")


def test_the_pages_run_their_modules_with_no_error_and_no_csp_violation(
    web: Process, page: Page, page_log: PageLog, user: Any, password: str
) -> None:
    for path in ["/", "/accounts/signup/", "/accounts/login/"]:
        open_page(page, web.url + path)

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{web.url}/")

    # The upload page: its entry module and every module it imports ran, up to a live socket
    # and the (empty) gallery read from the API.
    open_page(page, web.url + "/")
    expect(page.locator("script[type=module]")).to_have_attribute(
        "src", "/static/media_tasks/main.js"
    )
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#empty")).to_be_visible()

    open_page(page, web.url + "/chat/")
    open_page(page, web.url + "/chat/general/")
    expect(page.locator("script[type=module]")).to_have_attribute("src", "/static/chat/chat.js")
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#chat-presence li")).to_have_text(["alice (you)"])

    assert page_log.errors == []
