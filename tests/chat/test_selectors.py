"""What a connection is sent first (history and replay), the room list's order, search in a
room (PostgreSQL's full text search, or the simple fallback) and a message in context."""

from __future__ import annotations

from typing import Any

import pytest

from chat.models import Room
from chat.publishing import messages_publish, messages_sequence
from chat.selectors import (
    history_on_connect,
    messages_around,
    messages_search,
    room_last_seq,
    rooms_active,
    rooms_of,
    rooms_of_each,
)
from chat.services import (
    membership_add,
    message_delete,
    message_post,
    room_get_or_create,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


def published(room: Room, user: Any, count: int) -> None:
    for n in range(count):
        message_post(room=room, author=user, body=f"m{n + 1}")
    messages_sequence(room_id=room.pk)
    messages_publish(room_id=room.pk)


def test_history_on_connect_replays_exactly_what_came_after_since(
    user: Any, settings: Any, django_assert_num_queries: Any
) -> None:
    # Above the 230 messages missed here (the default is lower: tests/security checks it).
    settings.CHAT = {**settings.CHAT, "REPLAY_MAX": 2000}
    room = room_get_or_create(name="general")
    published(room, user, 250)
    replay = history_on_connect(room=room, since=20)
    seqs = [m["seq"] for frame in replay.frames for m in frame["messages"]]
    assert seqs == list(range(21, 251))
    assert [len(frame["messages"]) for frame in replay.frames] == [100, 100, 30]
    assert replay.cursor == 250
    with django_assert_num_queries(1):  # the room's last seq: nothing after it to read
        caught_up = history_on_connect(room=room, since=250)
    assert caught_up.frames == [{"type": "chat.history", "messages": [], "has_more": True}]
    assert caught_up.cursor == 250
    fresh = history_on_connect(room=room, since=None)
    assert [m["seq"] for m in fresh.frames[0]["messages"]] == list(range(201, 251))
    assert fresh.cursor == 250


def test_history_of_an_empty_room(user: Any) -> None:
    room = room_get_or_create(name="general")
    replay = history_on_connect(room=room, since=None)
    assert replay.frames == [{"type": "chat.history", "messages": [], "has_more": False}]
    assert replay.cursor == 0
    assert history_on_connect(room=room, since=0).cursor == 0


def test_rooms_active_lists_rooms_with_messages_most_recent_first(user: Any) -> None:
    quiet = room_get_or_create(name="quiet")
    older, newer = room_get_or_create(name="older"), room_get_or_create(name="newer")
    published(older, user, 1)
    published(newer, user, 1)
    assert [room.name for room in rooms_active()] == ["newer", "older"]
    assert quiet not in rooms_active()


def test_rooms_of_a_user_are_theirs_the_most_recently_active_first(
    user: Any, other_user: Any
) -> None:
    quiet_b, quiet_a = room_get_or_create(name="quiet-b"), room_get_or_create(name="quiet-a")
    older, newer = room_get_or_create(name="older"), room_get_or_create(name="newer")
    not_theirs = room_get_or_create(name="not-theirs")
    for room in (quiet_b, quiet_a, older, newer):
        membership_add(room=room, user=user)
    membership_add(room=not_theirs, user=other_user)
    published(older, user, 1)
    published(newer, user, 2)
    published(not_theirs, other_user, 1)
    # Rooms without a message yet come last, by name.
    assert [room.name for room in rooms_of(user_id=user.pk)] == [
        "newer",
        "older",
        "quiet-a",
        "quiet-b",
    ]
    assert [room.name for room in rooms_of(user_id=other_user.pk)] == ["not-theirs"]
    assert (room_last_seq(room_id=newer.pk), room_last_seq(room_id=quiet_a.pk)) == (2, 0)
    with pytest.raises(Room.DoesNotExist):
        room_last_seq(room_id=not_theirs.pk + 1000)


def test_the_rooms_of_users_connecting_together_are_one_statement(
    user: Any, other_user: Any, django_user_model: Any, django_assert_num_queries: Any
) -> None:
    nobody = django_user_model.objects.create_user("carol", password="a-long-password-5")
    for name in ("older", "newer"):
        membership_add(room=room_get_or_create(name=name), user=user)
    membership_add(room=room_get_or_create(name="theirs"), user=other_user)
    published(room_get_or_create(name="newer"), user, 1)
    users = [user.pk, other_user.pk, nobody.pk, user.pk]
    with django_assert_num_queries(1):
        each = rooms_of_each(users)
    assert [[room.name for room in rooms] for rooms in each] == [
        [room.name for room in rooms_of(user_id=user_id)] for user_id in users
    ]
    assert [[room.name for room in rooms] for rooms in each] == [
        ["newer", "older"],
        ["theirs"],
        [],
        ["newer", "older"],
    ]
    # The same user twice (two tabs): each connection its own instances.
    assert not {id(room) for room in each[0]} & {id(room) for room in each[3]}


def test_search_finds_the_room_s_messages_with_every_word_newest_first(
    user: Any, other_user: Any
) -> None:
    room = room_get_or_create(name="general")
    for body in ["deploy the web server", "lunch?", "the server is down", "Server deploy done"]:
        message_post(room=room, author=user, body=body)
    other = room_get_or_create(name="other")
    message_post(room=other, author=user, body="server deploy elsewhere")
    messages_sequence(room_id=room.pk)
    messages_sequence(room_id=other.pk)
    assert [m.body for m in messages_search(room=room, query="server deploy")] == [
        "Server deploy done",
        "deploy the web server",
    ]
    assert [m.body for m in messages_search(room=room, query="lunch")] == ["lunch?"]
    assert messages_search(room=room, query="   ") == []
    deleted = messages_search(room=room, query="lunch")[0]
    message_delete(room=room, user=user, message_id=deleted.pk)
    assert messages_search(room=room, query="lunch") == [], "a deleted message is not found"


def test_a_message_in_context_comes_with_its_neighbours(user: Any) -> None:
    room = room_get_or_create(name="general")
    published(room, user, 30)
    assert [m.seq for m in messages_around(room=room, seq=15)] == list(range(5, 26))
    assert [m.seq for m in messages_around(room=room, seq=2)] == list(range(1, 13))
