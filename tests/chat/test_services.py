"""The chat's rules on the real database: names, message checks, posting with its job,
presence rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from chat.exceptions import InvalidMessage, InvalidRoomName
from chat.models import Message, Presence, Room
from chat.selectors import presence_changes, presence_users
from chat.services import (
    message_clean,
    message_post,
    presence_join,
    presence_prune,
    presence_touch,
    room_get_or_create,
    room_name_clean,
)
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
