"""The chat page in Debian's Chromium: two users chatting, markup in a message staying text,
history paging in on scroll, and the page reconnecting by itself after a server restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, WebSocketRoute, expect

from chat.publishing import messages_publish, messages_sequence
from chat.services import message_post, room_get_or_create
from tests.browser import PageLog, new_page
from tests.processes import Process, Processes, wait_until_serving
from wire.close import Close

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

XSS = "<img src=x onerror=\"document.title='pwned';alert(1)\">"


def log_in(page: Page, base_url: str, username: str, password: str, room: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next=/chat/{room}/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base_url}/chat/{room}/")
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "live")


def say(page: Page, body: str) -> None:
    page.fill("#chat-input", body)
    page.press("#chat-input", "Enter")


@pytest.fixture
def second_page(browser: Browser, page_log: PageLog) -> Iterator[Page]:
    opened = new_page(browser, page_log)
    yield opened
    opened.context.close()


@pytest.fixture
def web(processes: Processes) -> Process:
    """The development server with its in-process workers, as `make run` serves the site."""
    return processes.runserver("web")


def test_two_users_chat_and_markup_in_a_message_stays_text(
    web: Process,
    page: Page,
    second_page: Page,
    page_log: PageLog,
    user: Any,
    other_user: Any,
    password: str,
) -> None:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    for opened in (page, second_page):
        opened.on("dialog", record)
    alice, bob = page, second_page
    log_in(alice, web.url, user.username, password, "general")
    log_in(bob, web.url, other_user.username, password, "general")
    expect(alice.locator("#chat-presence li")).to_have_text(["alice (you)", "bob"])
    title = alice.title()

    say(alice, "Hello Bob!")
    expect(bob.locator(".chat-message .chat-body")).to_have_text(["Hello Bob!"])
    expect(alice.locator("#chat-messages .chat-message.mine .chat-body")).to_have_text(
        ["Hello Bob!"]
    )
    expect(alice.locator("#chat-pending .chat-message")).to_have_count(0)

    say(bob, XSS)
    shown = alice.locator("#chat-messages .chat-message").nth(1)
    expect(shown.locator(".chat-body")).to_have_text(XSS)
    expect(shown.locator(".chat-author")).to_have_text("bob")
    assert shown.get_attribute("class") == "chat-message", "bob's message is not marked alice's"
    expect(bob.locator("#chat-messages .chat-message.mine .chat-body")).to_have_text([XSS])
    assert alice.locator("#chat-log img").count() == 0
    assert bob.locator("#chat-log img").count() == 0
    alice.wait_for_timeout(500)
    assert alice.title() == title
    assert dialogs == []
    assert page_log.errors == []

    # Bob leaves: alice's list follows.
    bob.close()
    expect(alice.locator("#chat-presence li")).to_have_text(["alice (you)"])


def test_a_crowded_room_lists_the_first_names_and_how_many_more(
    processes: Processes,
    browser: Browser,
    page: Page,
    second_page: Page,
    page_log: PageLog,
    user: Any,
    other_user: Any,
    django_user_model: Any,
    password: str,
) -> None:
    web = processes.runserver("web", CHAT_PRESENCE_LIST="1")
    carol = django_user_model.objects.create_user("carol", password=password)
    third_page = new_page(browser, page_log)
    try:
        log_in(page, web.url, user.username, password, "general")
        log_in(second_page, web.url, other_user.username, password, "general")
        log_in(third_page, web.url, carol.username, password, "general")
        # carol's page was sent one name (alice's) and the count; her own is always shown.
        # The joins told to the pages (bob's may come after carol's page counted him) are
        # counted, and listed only while the list has room.
        expect(third_page.locator("#chat-presence li")).to_have_text(
            ["alice", "carol (you)", "and 1 more"]
        )
        expect(page.locator("#chat-presence li")).to_have_text(["alice (you)", "and 2 more"])
        expect(second_page.locator("#chat-presence li")).to_have_text(
            ["alice", "bob (you)", "and 1 more"]
        )
        second_page.close()
        expect(third_page.locator("#chat-presence li")).to_have_text(["alice", "carol (you)"])
        assert page_log.errors == []
    finally:
        third_page.context.close()


def test_older_messages_page_in_when_scrolling_up(
    web: Process, page: Page, page_log: PageLog, user: Any, password: str
) -> None:
    def post_earlier() -> None:
        room = room_get_or_create(name="history")
        for n in range(1, 121):
            message_post(room=room, author=user, body=f"old message {n}")
        messages_sequence(room_id=room.pk)
        messages_publish(room_id=room.pk)

    # Off Playwright's thread, whose event loop keeps the services from reaching the layer.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(post_earlier).result()
    log_in(page, web.url, user.username, password, "history")
    messages = page.locator("#chat-messages .chat-message")
    expect(messages).to_have_count(50)
    expect(messages.last.locator(".chat-body")).to_have_text("old message 120")
    for expected in (100, 120):
        page.locator("#chat-log").evaluate("log => { log.scrollTop = 0; }")
        expect(messages).to_have_count(expected)
    expect(messages.first.locator(".chat-body")).to_have_text("old message 1")
    assert page_log.errors == []


def test_the_page_reconnects_after_a_server_restart_and_misses_nothing(
    processes: Processes,
    page: Page,
    second_page: Page,
    page_log: PageLog,
    user: Any,
    other_user: Any,
    password: str,
) -> None:
    web = processes.runserver("web")
    alice, bob = page, second_page
    log_in(alice, web.url, user.username, password, "general")
    say(alice, "before the restart")
    expect(alice.locator("#chat-messages .chat-body")).to_have_text(["before the restart"])

    web.stop()
    expect(alice.locator("#chat-status")).to_have_attribute("data-state", "reconnecting")
    # Typed while the server is down: it waits, marked pending, and goes out on reconnect.
    say(alice, "typed while offline")
    expect(alice.locator("#chat-pending .chat-message")).to_have_count(1)
    restarted = processes.start(web.name + "-again", web.popen.args, port=web.port)
    wait_until_serving(restarted)
    log_in(bob, web.url, other_user.username, password, "general")
    say(bob, "while alice was away")

    expect(alice.locator("#chat-status")).to_have_attribute("data-state", "live", timeout=40_000)
    bodies = alice.locator("#chat-messages .chat-body")
    expect(bodies).to_have_count(3, timeout=20_000)
    seen = bodies.all_text_contents()
    assert seen[0] == "before the restart"
    assert sorted(seen[1:]) == ["typed while offline", "while alice was away"]
    expect(alice.locator("#chat-pending .chat-message")).to_have_count(0)
    # Reloaded, the page gets the same messages in the same order from the server.
    alice.reload()
    expect(bodies).to_have_text(seen)
    # Chromium logs the failed reconnect attempts; nothing else may show.
    assert page_log.unexpected(r"WebSocket connection to .* failed") == []


@pytest.mark.parametrize(
    ("code", "status", "notice"),
    [
        (Close.UNAUTHENTICATED, "Logged out", "You are not logged in: log in again to chat."),
        (Close.BAD_ROOM, "No such room", "This room name is not allowed."),
    ],
    ids=["unauthenticated", "bad_room"],
)
def test_the_page_stops_on_the_close_codes_that_the_wire_defines(
    web: Process,
    page: Page,
    page_log: PageLog,
    user: Any,
    password: str,
    code: Close,
    status: str,
    notice: str,
) -> None:
    # The socket is closed with the code as Python defines it (the room view refuses a bad
    # name before any page could open its socket): the page must know it from the wire's
    # JSON, and stop instead of reconnecting.
    opened: list[str] = []

    def close_at_once(ws: WebSocketRoute) -> None:
        opened.append(ws.url)
        ws.close(code=int(code))

    page.route_web_socket(re.compile(r"/ws/chat/"), close_at_once)
    page.goto(f"{web.url}/accounts/login/?next=/chat/general/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{web.url}/chat/general/")

    expect(page.locator("#chat-status")).to_have_text(status)
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "offline")
    expect(page.get_by_role("alert")).to_have_text(notice)
    # Longer than the first reconnect's backoff (0.5 to 1 s).
    page.wait_for_timeout(2000)
    assert len(opened) == 1, opened
    assert page_log.errors == []
