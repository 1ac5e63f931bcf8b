"""Edits, deletes, reactions, unread counts and mentions between two users in two browser
contexts (Debian's Chromium), on the development server with its in-process workers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser import PageLog
from tests.chat.test_browser import log_in, say, second_page, web  # noqa: F401
from tests.processes import Process

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def accept(dialog: Dialog) -> None:
    dialog.accept()


def test_edit_delete_reaction_are_seen_live_and_unread_counts_move(
    web: Process,  # noqa: F811
    page: Page,
    second_page: Page,  # noqa: F811
    page_log: PageLog,
    user: Any,
    other_user: Any,
    password: str,
) -> None:
    alice, bob = page, second_page
    alice.on("dialog", accept)
    # Bob belongs to "random" too: his page in "general" counts its new messages.
    log_in(bob, web.url, other_user.username, password, "random")
    log_in(alice, web.url, user.username, password, "general")
    bob.goto(f"{web.url}/chat/general/")
    expect(bob.locator("#chat-status")).to_have_attribute("data-state", "live")
    random_badge = bob.locator('.chat-room-links a[data-room="random"] + .chat-unread')
    expect(random_badge).to_be_hidden()

    say(alice, "Helo Bob")
    bobs_view = bob.locator("#chat-messages .chat-message").first
    expect(bobs_view.locator(".chat-body")).to_have_text("Helo Bob")

    # Alice corrects her message: Bob sees the new text, marked edited.
    mine = alice.locator("#chat-messages .chat-message.mine").first
    mine.hover()
    mine.get_by_role("button", name="Edit").click()
    mine.locator(".chat-edit-box textarea").fill("Hello Bob")
    mine.get_by_role("button", name="Save").click()
    expect(bobs_view.locator(".chat-body")).to_have_text("Hello Bob")
    expect(bobs_view.locator(".chat-edited")).to_have_text("edited")
    expect(bobs_view.get_by_role("button", name="Edit")).to_have_count(0)

    # Bob reacts: Alice sees the count, Bob sees his own pressed.
    bobs_view.hover()
    bobs_view.get_by_role("button", name="React with 👍").click()
    expect(mine.locator(".chat-reaction")).to_have_text("👍 1")
    expect(mine.locator(".chat-reaction")).to_have_attribute("aria-pressed", "false")
    expect(bobs_view.locator(".chat-reaction")).to_have_attribute("aria-pressed", "true")

    # Alice deletes it: a tombstone stays in its place on both pages.
    mine.hover()
    mine.get_by_role("button", name="Delete").click()
    expect(bobs_view.locator(".chat-body")).to_have_text("This message was deleted.")
    expect(bobs_view.locator(".chat-reaction")).to_have_count(0)
    expect(mine).to_have_class(re.compile(r"\bdeleted\b"))

    # Alice posts in "random": Bob's count for it moves while he stays in "general", and a
    # mention of him shows as a notice.
    alice.goto(f"{web.url}/chat/random/")
    expect(alice.locator("#chat-status")).to_have_attribute("data-state", "live")
    say(alice, "anyone here?")
    expect(random_badge).to_have_text("1")
    say(alice, "@bob are you there?")
    expect(random_badge).to_have_text("2")
    expect(bob.locator("#chat-notice")).to_contain_text("alice mentioned you in #random")
    mention = alice.locator("#chat-messages .chat-message .chat-mention")
    expect(mention).to_have_text("@bob")

    # Bob opens "random": the new messages line is above what he has not read; once read,
    # the count is gone on his next page, whichever device it is on.
    bob.goto(f"{web.url}/chat/random/")
    expect(bob.locator("#chat-messages .chat-new-line + .chat-message .chat-body")).to_have_text(
        "anyone here?"
    )
    expect(bob.locator("#chat-messages .chat-message.mentions-me")).to_have_count(1)
    bob.wait_for_timeout(1500)
    bob.goto(f"{web.url}/chat/general/")
    expect(bob.locator("#chat-status")).to_have_attribute("data-state", "live")
    expect(random_badge).to_be_hidden()
    assert page_log.errors == []
