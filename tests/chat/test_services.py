"""The chat's rules on the real database: names, message checks, posting with its job,
numbering in order, publishing once, replay selection, presence rows."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction
from django.utils import timezone

from chat.exceptions import InvalidMessage, InvalidRoomName
from chat.models import Message, Presence, Room
from chat.publishing import messages_publish, messages_sequence
from chat.selectors import history_on_connect, presence_changes, presence_users, rooms_active
from chat.services import (
    message_clean,
    message_post,
    presence_join,
    presence_prune,
    presence_touch,
    room_get_or_create,
    room_name_clean,
)
from chat.tasks import message_publish
from workers.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


@pytest.mark.parametrize("name", ["general", "a", "Team_42-ops", "x" * 64])
def test_room_names_of_letters_digits_dash_underscore_up_to_64_are_allowed(name: str) -> None:
    assert room_name_clean(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "a.b", "a b", "café", "<b>", "a/b", None, 7])
def test_other_room_names_are_refused_naming_the_rule(name: Any) -> None:
    with pytest.raises(InvalidRoomName, match="letters, digits, - and _, at most 64"):
        room_name_clean(name)


def test_a_room_is_created_once_on_first_use() -> None:
    first = room_get_or_create(name="general")
    assert room_get_or_create(name="general") == first
    assert Room.objects.count() == 1


def test_bodies_are_trimmed_and_a_missing_client_id_is_made_up() -> None:
    clean = message_clean(body="\n  hello\tthere \n")
    assert clean.body == "hello\tthere"
    assert len(clean.client_id) == 32
    assert message_clean(body="x", client_id="abc-1.2:3_4").client_id == "abc-1.2:3_4"


def test_message_post_stores_the_message_and_its_job_in_one_transaction(user: Any) -> None:
    room = room_get_or_create(name="general")
    result = message_post(room=room, author=user, body="hi", client_id="c1", reply_to="x!y")
    assert result.created
    message = Message.objects.get()
    assert (message.seq, message.published_at, message.reply_to) == (None, None, "x!y")
    job = Job.objects.get()
    assert (job.channel, job.task_path, job.args) == (
        "chat-messages",
        "chat.tasks.message_publish",
        [room.pk],
    )
    assert job.max_attempts == 12


def test_a_rolled_back_post_leaves_neither_message_nor_job(user: Any) -> None:
    room = room_get_or_create(name="general")

    def post_then_fail() -> None:
        with transaction.atomic():
            message_post(room=room, author=user, body="hi", client_id="c1")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        post_then_fail()
    assert not Message.objects.exists()
    assert not Job.objects.exists()


def test_a_repeated_client_id_returns_the_first_message_and_redirects_its_ack(user: Any) -> None:
    room = room_get_or_create(name="general")
    first = message_post(room=room, author=user, body="hi", client_id="c1", reply_to="old")
    again = message_post(room=room, author=user, body="hi!", client_id="c1", reply_to="new")
    assert not again.created
    assert again.message.pk == first.message.pk
    assert again.message.body == "hi"
    assert Message.objects.get().reply_to == "new"
    assert Job.objects.count() == 1


def test_the_same_client_id_in_another_room_or_by_another_user_is_another_message(
    user: Any, other_user: Any
) -> None:
    general, random = room_get_or_create(name="general"), room_get_or_create(name="random")
    message_post(room=general, author=user, body="a", client_id="c1")
    message_post(room=random, author=user, body="b", client_id="c1")
    message_post(room=general, author=other_user, body="c", client_id="c1")
    assert Message.objects.count() == 3


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "empty"),
        (" \n\t ", "empty"),
        ("x" * 2001, "2001 characters long"),
        ("nul\x00", "control characters"),
        ("bell\x07", "control characters"),
        ("\ud83d", "not valid Unicode"),
        (None, "needs a body"),
        (["list"], "needs a body"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(user: Any, body: Any, reason: str) -> None:
    room = room_get_or_create(name="general")
    with pytest.raises(InvalidMessage, match=reason):
        message_post(room=room, author=user, body=body)
    assert not Message.objects.exists()


def test_sequencing_follows_the_order_messages_were_stored_and_runs_once(
    user: Any, other_user: Any
) -> None:
    room = room_get_or_create(name="general")
    for n in range(3):
        message_post(room=room, author=user, body=f"alice {n}")
        message_post(room=room, author=other_user, body=f"bob {n}")
    assert messages_sequence(room_id=room.pk) == 6
    assert messages_sequence(room_id=room.pk) == 0
    ordered = list(Message.objects.order_by("seq").values_list("seq", "body"))
    assert ordered == [
        (1, "alice 0"),
        (2, "bob 0"),
        (3, "alice 1"),
        (4, "bob 1"),
        (5, "alice 2"),
        (6, "bob 2"),
    ]
    message_post(room=room, author=user, body="later")
    assert messages_sequence(room_id=room.pk) == 1
    assert Message.objects.get(body="later").seq == 7
    room.refresh_from_db()
    assert room.last_seq == 7
    assert room.last_message_at is not None


def test_each_room_counts_on_its_own(user: Any) -> None:
    general, random = room_get_or_create(name="general"), room_get_or_create(name="random")
    message_post(room=general, author=user, body="g")
    message_post(room=random, author=user, body="r")
    messages_sequence(room_id=general.pk)
    messages_sequence(room_id=random.pk)
    assert sorted(Message.objects.values_list("room__name", "seq")) == [
        ("general", 1),
        ("random", 1),
    ]


def test_the_database_refuses_a_seq_twice_in_a_room(user: Any) -> None:
    room = room_get_or_create(name="general")
    message_post(room=room, author=user, body="a")
    message_post(room=room, author=user, body="b")
    with pytest.raises(IntegrityError):
        Message.objects.update(seq=1)


async def receive_all(channel: str) -> list[dict[str, Any]]:
    layer = get_channel_layer()
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), 0.3))
        except TimeoutError:
            return received


def listener(room: Room) -> str:
    from chat.events import room_group

    layer = get_channel_layer()

    async def join() -> str:
        channel: str = await layer.new_channel()
        await layer.group_add(room_group(room.pk), channel)
        return channel

    return asyncio.run(join())


def test_publishing_broadcasts_in_seq_order_once_with_the_reply_to(
    user: Any, other_user: Any
) -> None:
    room = room_get_or_create(name="general")
    channel = listener(room)
    message_post(room=room, author=user, body="one", reply_to="alice!1")
    message_post(room=room, author=other_user, body="two", reply_to="bob!2")
    assert messages_publish(room_id=room.pk) == 0, "nothing goes out before it has its seq"
    messages_sequence(room_id=room.pk)
    assert messages_publish(room_id=room.pk) == 2
    assert messages_publish(room_id=room.pk) == 0
    (broadcast,) = asyncio.run(receive_all(channel))
    assert broadcast["type"] == "chat.broadcast"
    assert [(m["seq"], m["body"], m["author"]) for m in broadcast["messages"]] == [
        (1, "one", "alice"),
        (2, "two", "bob"),
    ]
    assert broadcast["reply_to"] == ["alice!1", "bob!2"]
    assert not Message.objects.filter(published_at__isnull=True).exists()


def test_the_task_numbers_and_publishes_and_a_rerun_changes_nothing(user: Any) -> None:
    room = room_get_or_create(name="general")
    message_post(room=room, author=user, body="one")
    assert message_publish.call(room.pk) == {"sequenced": 1, "published": 1}
    assert message_publish.call(room.pk) == {"sequenced": 0, "published": 0}
    assert message_publish.call(room.pk + 1000) == {"sequenced": 0, "published": 0}


def published(room: Room, user: Any, count: int) -> None:
    for n in range(count):
        message_post(room=room, author=user, body=f"m{n + 1}")
    messages_sequence(room_id=room.pk)
    messages_publish(room_id=room.pk)


def test_history_on_connect_replays_exactly_what_came_after_since(user: Any, settings: Any) -> None:
    # Above the 230 messages missed here (the default is lower: tests/security checks it).
    settings.CHAT = {**settings.CHAT, "REPLAY_MAX": 2000}
    room = room_get_or_create(name="general")
    published(room, user, 250)
    replay = history_on_connect(room=room, since=20)
    seqs = [m["seq"] for frame in replay.frames for m in frame["messages"]]
    assert seqs == list(range(21, 251))
    assert [len(frame["messages"]) for frame in replay.frames] == [100, 100, 30]
    assert replay.cursor == 250
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


def test_presence_counts_live_connections_and_prunes_expired_ones(
    settings: Any, user: Any, other_user: Any
) -> None:
    room = room_get_or_create(name="general")
    presence_join(room_id=room.pk, user_id=user.pk, connection_id="a!1")
    presence_join(room_id=room.pk, user_id=other_user.pk, connection_id="b!1")
    presence_join(room_id=room.pk, user_id=other_user.pk, connection_id="b!2")
    assert presence_users(room_id=room.pk) == ["alice", "bob"]
    long_ago = timezone.now() - timedelta(seconds=settings.CHAT["PRESENCE_TTL"] + 1)
    Presence.objects.filter(connection_id="b!1").update(seen_at=long_ago)
    assert presence_prune(room_id=room.pk) == set(), "bob still has a live connection"
    Presence.objects.filter(connection_id="b!2").update(seen_at=long_ago)
    assert presence_users(room_id=room.pk) == ["alice"]
    assert presence_changes(room_id=room.pk, user_ids={user.pk, other_user.pk}) == (
        ["alice"],
        ["bob"],
    )
    assert presence_prune(room_id=room.pk) == {other_user.pk}
    assert presence_prune(room_id=room.pk) == set()


def test_a_touch_restores_rows_another_server_pruned(user: Any) -> None:
    room = room_get_or_create(name="general")
    presence_join(room_id=room.pk, user_id=user.pk, connection_id="a!1")
    Presence.objects.all().delete()
    assert presence_touch(room_id=room.pk, members={"a!1": user.pk}) == {user.pk}
    assert presence_touch(room_id=room.pk, members={"a!1": user.pk}) == set()
    assert presence_users(room_id=room.pk) == ["alice"]
