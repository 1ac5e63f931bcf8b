"""The chat pages: login, the room list, the room page's markup and its security headers."""

from typing import Any

import pytest
from django.test import Client

from chat.publishing import messages_sequence
from chat.services import message_post, room_get_or_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/chat/", "/chat/general/"])
def test_the_chat_pages_ask_for_a_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_every_page_links_to_the_chat(client: Client) -> None:
    assert b'href="/chat/"' in client.get("/").content


def test_the_room_list_shows_active_rooms_most_recent_first(alice: Client, user: Any) -> None:
    for name in ["older", "newer"]:
        room = room_get_or_create(name=name)
        message_post(room=room, author=user, body="hi")
        messages_sequence(room_id=room.pk)
    room_get_or_create(name="silent")
    content = alice.get("/chat/").content.decode()
    assert content.index("#newer") < content.index("#older")
    assert "#silent" not in content


def test_the_room_box_opens_a_room_or_says_what_is_wrong_with_the_name(alice: Client) -> None:
    response = alice.get("/chat/", {"room": " team_1 "})
    assert (response.status_code, response["Location"]) == (302, "/chat/team_1/")
    response = alice.get("/chat/", {"room": "<b>no</b>"})
    assert response.status_code == 400
    assert b"letters, digits, - and _" in response.content
    assert b"<b>no</b>" not in response.content


def test_a_room_page_carries_its_room_and_user_as_data_and_loads_one_script(
    alice: Client,
) -> None:
    response = alice.get("/chat/general/")
    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-room="general"' in content
    assert 'data-user="alice"' in content
    assert '<script type="module" src="/static/chat/chat.js"></script>' in content
    # No inline script: everything the page runs comes from a file the CSP allows (the one
    # inline <script> holds data, JSON that no browser runs).
    assert content.count("<script") - content.count('type="application/json"') == 1


def test_the_chat_pages_send_a_strict_content_security_policy(alice: Client) -> None:
    for path in ["/chat/", "/chat/general/", "/chat/bad.name/"]:
        policy = alice.get(path)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["connect-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in policy


def test_a_bad_room_name_gets_a_page_saying_why_with_the_name_escaped(alice: Client) -> None:
    response = alice.get("/chat/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/")
    assert response.status_code == 404
    assert b"is not a room name" in response.content
    assert b"<img src=x" not in response.content
    assert b"&lt;img src=x onerror=alert(1)&gt;" in response.content


def test_search_and_context_are_for_members_only(alice: Client, user: Any, other_user: Any) -> None:
    from chat.services import room_create

    room = room_create(creator=user, title="Secret", private=True)
    message_post(room=room, author=user, body="the launch code is 1234")
    messages_sequence(room_id=room.pk)
    found = alice.get(f"/chat/{room.name}/search", {"q": "launch code"})
    assert found.status_code == 200
    assert b"the launch code is 1234" in found.content
    assert f'href="/chat/{room.name}/at/1#m1"'.encode() in found.content
    context = alice.get(f"/chat/{room.name}/at/1")
    assert context.status_code == 200
    assert b'class="chat-message found"' in context.content
    assert alice.get(f"/chat/{room.name}/at/2").status_code == 404
    bob = Client()
    bob.force_login(other_user)
    for path in (f"/chat/{room.name}/search?q=launch", f"/chat/{room.name}/at/1"):
        refused = bob.get(path)
        assert refused.status_code == 404
        assert b"1234" not in refused.content


def test_the_owner_sets_retention_from_the_room_page(alice: Client, user: Any) -> None:
    from chat.models import Room
    from chat.services import room_create

    room = room_create(creator=user, name="team")
    assert b'id="chat-retention"' in alice.get("/chat/team/").content
    alice.post("/chat/team/retention", {"days": "14"})
    assert Room.objects.get(pk=room.pk).retention_days == 14
