"""Pictures in a private room, and read markers kept in step across one user's open pages, in
Debian's Chromium on the development server with its in-process workers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, WebSocket, expect

from chat.services import room_create, room_invite
from tests.browser import PageLog
from tests.chat.test_browser import log_in, say, second_page, web  # noqa: F401
from tests.media_tasks import images
from tests.processes import Process, login
from workers.models import PausedChannel

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest_plugins = ["tests.browser"]

IMAGE_WORK = ("thumbnails", "compute")
PICTURE_LOADED = """
() => {
  const img = document.querySelector("#chat-messages .chat-picture[data-status='done'] img");
  return img !== null && img.complete && img.naturalWidth > 0;
}
"""
# A picture dropped on the room, as a file dragged from the desktop arrives.
DROP = """
async (base64) => {
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
  const target = document.getElementById("chat-log");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
    target.dispatchEvent(new DragEvent(type, init));
  }
}
"""
# A page the user does not look at: it never says it read anything.
HIDDEN = """
Object.defineProperty(Document.prototype, "visibilityState", { get: () => "hidden" });
Object.defineProperty(Document.prototype, "hidden", { get: () => true });
"""


def progress_frames(page: Page) -> list[dict[str, Any]]:
    """The chat.progress frames the page's chat socket receives from now on."""
    frames: list[dict[str, Any]] = []

    def on_socket(socket: WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "chat.progress":
                frames.append(frame)

        if "/ws/chat/" in socket.url:
            socket.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return frames


def test_a_picked_picture_shows_progress_then_its_thumbnail_to_members_only(
    web: Process,  # noqa: F811
    page: Page,
    second_page: Page,  # noqa: F811
    page_log: PageLog,
    user: Any,
    other_user: Any,
    password: str,
) -> None:
    alice, bob = page, second_page
    carol = get_user_model().objects.create_user(username="carol", password=password)
    room = room_create(creator=user, private=True, title="Holiday")
    room_invite(room=room, by=user, username=other_user.username)
    # No worker takes the picture until the test lets it: its placeholder shows first.
    for channel in IMAGE_WORK:
        PausedChannel.objects.create(name=channel)
    seen_by = {"alice": progress_frames(alice), "bob": progress_frames(bob)}
    log_in(alice, web.url, user.username, password, room.name)
    log_in(bob, web.url, other_user.username, password, room.name)

    alice.set_input_files(
        "#chat-file",
        files=[{"name": "beach.png", "mimeType": "image/png", "buffer": images.picture("PNG")}],
    )
    for viewer in (alice, bob):
        waiting = viewer.locator("#chat-messages .chat-message .chat-picture")
        expect(waiting).to_have_attribute("data-status", "queued")
        expect(waiting.locator(".chat-picture-box")).to_be_visible()
        expect(waiting.locator("progress")).to_be_visible()
    expect(bob.locator("#chat-messages .chat-message .chat-author")).to_have_text("alice")
    expect(alice.locator("#chat-pending .chat-message")).to_have_count(0)

    PausedChannel.objects.filter(name__in=IMAGE_WORK).delete()
    for viewer in (alice, bob):
        done = viewer.locator("#chat-messages .chat-picture")
        expect(done).to_have_attribute("data-status", "done", timeout=60_000)
        viewer.wait_for_function(PICTURE_LOADED)
        expect(done.locator("progress")).to_have_count(0)
    for name, frames in seen_by.items():
        assert any(0 < frame["progress"] < 100 for frame in frames), name

    # The thumbnail's URL is the room's: a member fetches it, a non-member gets a 404.
    thumbnail = bob.locator("#chat-messages .chat-picture img").get_attribute("src") or ""
    assert thumbnail.startswith(f"/chat/{room.name}/pictures/")
    largest = bob.locator("#chat-messages .chat-picture a").get_attribute("href") or ""
    member = login(web.url, other_user.username, password)
    stranger = login(web.url, carol.username, password)
    try:
        fetched = member.get(thumbnail)
        assert fetched.status_code == 200
        assert fetched.headers["content-type"].startswith("image/")
        for url in (thumbnail, largest, f"/chat/{room.name}/"):
            assert stranger.get(url).status_code == 404, url
    finally:
        member.close()
        stranger.close()

    # A picture dropped on the page goes the same way.
    alice.evaluate(DROP, base64.b64encode(images.picture("PNG")).decode())
    dropped = bob.locator("#chat-messages .chat-message .chat-picture").nth(1)
    expect(dropped).to_have_attribute("data-status", "done", timeout=60_000)
    assert page_log.unexpected() == []


def test_reading_a_room_on_one_page_updates_the_user_s_other_pages_live(
    web: Process,  # noqa: F811
    page: Page,
    second_page: Page,  # noqa: F811
    page_log: PageLog,
    user: Any,
    other_user: Any,
    password: str,
) -> None:
    alice, bob = page, second_page
    log_in(bob, web.url, other_user.username, password, "general")
    log_in(alice, web.url, user.username, password, "general")
    # Bob waits in "random"; Alice writes in "general".
    bob.goto(f"{web.url}/chat/random/")
    expect(bob.locator("#chat-status")).to_have_attribute("data-state", "live")
    say(alice, "one")
    say(alice, "two")
    general_badge = bob.locator('.chat-room-links a[data-room="general"] + .chat-unread')
    expect(general_badge).to_have_text("2")

    # A tab of Bob's that he does not look at opens "general": it shows what is new, and
    # reads nothing by itself.
    background = bob.context.new_page()
    background.add_init_script(HIDDEN)
    background.goto(f"{web.url}/chat/general/")
    expect(background.locator("#chat-status")).to_have_attribute("data-state", "live")
    new_line = background.locator("#chat-messages .chat-new-line")
    expect(
        background.locator("#chat-messages .chat-new-line + .chat-message .chat-body")
    ).to_have_text("one")
    background.wait_for_timeout(1500)
    expect(general_badge).to_have_text("2")

    # Bob reads "general" on another tab: the background tab and the sidebar follow live.
    reading = bob.context.new_page()
    reading.goto(f"{web.url}/chat/general/")
    expect(reading.locator("#chat-messages .chat-message .chat-body")).to_have_text(["one", "two"])
    expect(new_line).to_have_count(0)
    expect(background.locator("#chat")).to_have_attribute("data-read-seq", "2")
    expect(general_badge).to_be_hidden()

    # A new message is new on the background tab again, after what was read.
    say(alice, "three")
    expect(background.locator("#chat-messages .chat-message .chat-body")).to_have_text(
        ["one", "two", "three"]
    )
    reading.wait_for_timeout(1500)
    expect(background.locator("#chat")).to_have_attribute("data-read-seq", "3")
    expect(new_line).to_have_count(0)
    assert page_log.unexpected() == []
