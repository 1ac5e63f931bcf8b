"""Private rooms: a non-member gets, on every path (room list, page, socket, history,
presence, the members' forms, the pictures), exactly what they get for a room that does not
exist."""

from __future__ import annotations

import re
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from chat.models import Membership, Room
from chat.publishing import messages_publish, messages_sequence
from chat.services import message_post, room_create, room_open
from media_tasks.processing import upload_renditions_make
from media_tasks.services import upload_create
from tests.chat.conftest import joined, open_chat
from tests.media_tasks.uploading import image_file

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]

MISSING = "private-" + "x" * 20


def same_page(content: bytes, name: str) -> str:
    """The page without what differs between any two answers (the room's name as asked, the
    form's CSRF token)."""
    text = content.decode().replace(name, "NAME")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "TOKEN", text)


def logged_in(user: Any, password: str) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


@pytest.fixture
def carol(django_user_model: Any, password: str) -> Any:
    return django_user_model.objects.create_user(username="carol", password=password)


@pytest.fixture
def secret(user: Any) -> Room:
    """A private room of alice's, with a message in it."""
    room = room_create(creator=user, title="Secret plans", private=True)
    message_post(room=room, author=user, body="the plan is cake")
    messages_sequence(room_id=room.pk)
    messages_publish(room_id=room.pk)
    return room


def test_the_room_list_shows_a_private_room_to_its_members_only(
    secret: Room, user: Any, other_user: Any, password: str
) -> None:
    mine = logged_in(user, password).get("/chat/").content.decode()
    assert "Secret plans" in mine
    theirs = logged_in(other_user, password).get("/chat/").content.decode()
    assert "Secret plans" not in theirs
    assert secret.name not in theirs


def test_a_private_room_page_is_a_404_like_a_room_that_does_not_exist(
    secret: Room, other_user: Any, password: str
) -> None:
    client = logged_in(other_user, password)
    hidden, missing = client.get(f"/chat/{secret.name}/"), client.get(f"/chat/{MISSING}/")
    assert hidden.status_code == missing.status_code == 404
    assert same_page(hidden.content, secret.name) == same_page(missing.content, MISSING)
    assert b"the plan is cake" not in hidden.content
    # Visiting it did not make bob a member.
    assert not Membership.objects.filter(room=secret, user=other_user).exists()


async def test_a_non_members_socket_is_closed_as_for_a_room_that_does_not_exist(
    secret: Room, other_user: Any, password: str
) -> None:
    hidden = await open_chat(f"/ws/chat/{secret.name}/?since=0", other_user, password)
    missing = await open_chat(f"/ws/chat/{MISSING}/?since=0", other_user, password)
    for communicator in (hidden, missing):
        # Nothing but the close: no history, no presence.
        assert await communicator.receive_output(5) == {"type": "websocket.close", "code": 4404}
    assert not await database_sync_to_async(Room.objects.filter(name=MISSING).exists)()


async def test_a_member_sees_the_room_and_its_history_and_presence(
    secret: Room, user: Any, password: str
) -> None:
    communicator = await open_chat(f"/ws/chat/{secret.name}/", user, password)
    history, presence = await joined(communicator)
    assert [m["body"] for m in history["messages"]] == ["the plan is cake"]
    assert presence["users"] == ["alice"]
    await communicator.disconnect()


def test_the_members_forms_answer_a_non_member_as_for_no_room(
    secret: Room, other_user: Any, carol: Any, password: str
) -> None:
    client = logged_in(other_user, password)
    for action, data in [
        ("invite", {"username": "bob"}),
        ("leave", {}),
        ("remove", {"username": "alice"}),
        ("rename", {"title": "mine now"}),
    ]:
        hidden = client.post(f"/chat/{secret.name}/{action}", data)
        missing = client.post(f"/chat/{MISSING}/{action}", data)
        assert hidden.status_code == missing.status_code == 404, action
    secret.refresh_from_db()
    assert secret.title == "Secret plans"
    assert list(secret.memberships.values_list("user__username", flat=True)) == ["alice"]


def test_a_private_room_s_picture_is_a_404_to_a_non_member_as_for_no_room(
    secret: Room, user: Any, other_user: Any, password: str, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT, settings.ORIGINALS_ROOT = tmp_path / "media", tmp_path / "originals"
    upload = upload_create(owner=user, files=[image_file("plan.png")])[0]
    message_post(room=secret, author=user, body="", picture=upload.pk)
    # The renditions as a worker stores them (the worker itself: tests/chat/test_pictures.py).
    upload_renditions_make(upload=upload)
    name = upload.renditions.values_list("name", flat=True).first()
    path = f"pictures/{upload.pk}/{name}"
    assert logged_in(user, password).get(f"/chat/{secret.name}/{path}").status_code == 200
    client = logged_in(other_user, password)
    hidden, missing = (
        client.get(f"/chat/{secret.name}/{path}"),
        client.get(f"/chat/{MISSING}/{path}"),
    )
    assert hidden.status_code == missing.status_code == 404
    assert same_page(hidden.content, secret.name) == same_page(missing.content, MISSING)
    # Through a public room of bob's, the picture is not found either.
    room_open(name="general", user=other_user)
    assert client.get(f"/chat/general/{path}").status_code == 404


async def test_an_invited_user_gets_in_and_a_removed_one_is_put_out_at_once(
    secret: Room, user: Any, other_user: Any, password: str
) -> None:
    owner = await database_sync_to_async(logged_in)(user, password)
    invited = await database_sync_to_async(owner.post)(
        f"/chat/{secret.name}/invite", {"username": "bob"}
    )
    assert invited.status_code == 302
    bob = await open_chat(f"/ws/chat/{secret.name}/", other_user, password)
    history, _presence = await joined(bob)
    assert [m["body"] for m in history["messages"]] == ["the plan is cake"]
    # Removed by the owner: bob's open socket closes, as if the room were gone.
    removed = await database_sync_to_async(owner.post)(
        f"/chat/{secret.name}/remove", {"username": "bob"}
    )
    assert removed.status_code == 302
    assert await bob.receive_output(5) == {"type": "websocket.close", "code": 4404}
    page = await database_sync_to_async(
        lambda: logged_in(other_user, password).get(f"/chat/{secret.name}/")
    )()
    assert page.status_code == 404


def test_only_the_owner_renames_and_removes(
    secret: Room, user: Any, other_user: Any, carol: Any, password: str
) -> None:
    logged_in(user, password).post(f"/chat/{secret.name}/invite", {"username": "bob"})
    logged_in(user, password).post(f"/chat/{secret.name}/invite", {"username": "carol"})
    bob = logged_in(other_user, password)
    bob.post(f"/chat/{secret.name}/rename", {"title": "bob's now"})
    bob.post(f"/chat/{secret.name}/remove", {"username": "carol"})
    secret.refresh_from_db()
    assert secret.title == "Secret plans"
    assert secret.memberships.filter(user=carol).exists()
    logged_in(user, password).post(f"/chat/{secret.name}/rename", {"title": "Cake plans"})
    secret.refresh_from_db()
    assert secret.title == "Cake plans"


def test_public_rooms_are_listed_and_joined_by_opening_them(
    user: Any, other_user: Any, password: str
) -> None:
    lobby = room_open(name="lobby", user=user)
    message_post(room=lobby, author=user, body="hello")
    messages_sequence(room_id=lobby.pk)
    listing = logged_in(other_user, password).get("/chat/").content.decode()
    assert "#lobby" in listing
    assert logged_in(other_user, password).get("/chat/lobby/").status_code == 200
    assert Membership.objects.filter(room=lobby, user=other_user).exists()
    # A private room's kind of name is never made on first use.
    assert logged_in(user, password).get(f"/chat/{MISSING}/").status_code == 404
    assert not Room.objects.filter(name=MISSING).exists()
