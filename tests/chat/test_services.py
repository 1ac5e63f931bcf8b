"""The chat's rules on the real database: names, message checks, posting with its job,
edits, deletes, reactions, read markers, mentions, typing, membership, presence rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from chat.exceptions import (
    InvalidFrame,
    InvalidMessage,
    InvalidRoomName,
    MessageNotFound,
    NotAllowed,
    RoomNotFound,
)
from chat.models import Message, MessageEvent, Presence, Room
from chat.publishing import messages_sequence
from chat.selectors import (
    Present,
    presence_changes,
    presence_users,
    reactions_of,
    read_seq,
    revisions_of,
    rooms_with_unread,
    unread_count,
)
from chat.services import (
    message_clean,
    message_delete,
    message_edit,
    message_post,
    notice_batch,
    presence_join,
    presence_leave,
    presence_prune,
    presence_touch,
    reaction_set,
    read_mark,
    revisions_allowed,
    room_create,
    room_get_or_create,
    room_invite,
    room_name_clean,
    room_open,
    typing_due,
)
from project import settings as project_settings
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
    settings: Any,
    user: Any,
    other_user: Any,
    django_user_model: Any,
    django_assert_num_queries: Any,
) -> None:
    room = room_get_or_create(name="general")
    presence_join(room_id=room.pk, members={"a!1": user.pk})
    presence_join(room_id=room.pk, members={"b!1": other_user.pk})
    presence_join(room_id=room.pk, members={"b!2": other_user.pk})
    # A connection to another room is not one to this room.
    carol = django_user_model.objects.create_user(username="carol")
    presence_join(room_id=room_get_or_create(name="other").pk, members={"c": carol.pk})
    assert presence_users(room_id=room.pk) == Present(names=["alice", "bob"], count=2, limit=100)
    # A room of thousands: a page of names, and how many.
    settings.CHAT = {**settings.CHAT, "PRESENCE_LIST": 1}
    with django_assert_num_queries(1):
        assert presence_users(room_id=room.pk) == Present(names=["alice"], count=2, limit=1)
    settings.CHAT = {**settings.CHAT, "PRESENCE_LIST": 100}
    long_ago = timezone.now() - timedelta(seconds=settings.CHAT["PRESENCE_TTL"] + 1)
    Presence.objects.filter(connection_id="b!1").update(seen_at=long_ago)
    assert presence_prune(room_id=room.pk) == set(), "bob still has a live connection"
    Presence.objects.filter(connection_id="b!2").update(seen_at=long_ago)
    assert presence_users(room_id=room.pk) == Present(names=["alice"], count=1, limit=100)
    assert presence_changes(room_id=room.pk, user_ids={user.pk, other_user.pk}) == (
        ["alice"],
        ["bob"],
        1,
    )
    assert presence_prune(room_id=room.pk) == {other_user.pk}
    assert presence_prune(room_id=room.pk) == set()


def test_a_connection_joining_again_updates_its_one_row(user: Any, other_user: Any) -> None:
    room = room_get_or_create(name="general")
    presence_join(room_id=room.pk, members={"a!1": user.pk})
    presence_join(room_id=room.pk, members={"a!1": other_user.pk})
    (row,) = Presence.objects.all()
    assert row.user_id == other_user.pk


@pytest.mark.postgres
def test_only_presence_commits_without_waiting_for_the_disk() -> None:
    from django.db import connection

    from chat.services import fleeting_commit

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    assert synchronous_commit() == "on"
    with fleeting_commit():
        assert synchronous_commit() == "off"
    # SET LOCAL: the next transaction of the connection waits for its commit again.
    with transaction.atomic():
        assert synchronous_commit() == "on"


@pytest.mark.postgres
def test_presence_in_one_statement_writes_the_orm_s_row_without_waiting_for_the_disk(
    user: Any, other_user: Any, django_assert_num_queries: Any
) -> None:
    from django.db import connection

    room = room_get_or_create(name="general")

    def wal_syncs() -> int:
        """The server's WAL flushes so far, this connection's included (PostgreSQL 15+)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
            cursor.execute("SELECT wal_sync FROM pg_stat_wal")
            return int(cursor.fetchone()[0])

    # One statement outside a transaction; the ORM's upsert inside one.
    presence_join(room_id=room.pk, members={"fast": user.pk})
    with transaction.atomic():
        presence_join(room_id=room.pk, members={"orm": user.pk})
    fast, orm = (Presence.objects.get(connection_id=c) for c in ("fast", "orm"))
    assert (fast.room_id, fast.user_id) == (orm.room_id, orm.user_id) == (room.pk, user.pk)
    assert fast.seen_at <= orm.seen_at
    # A connection id seen again takes the new user, as the ORM's upsert does.
    presence_join(room_id=room.pk, members={"fast": other_user.pk})
    assert Presence.objects.get(connection_id="fast").user_id == other_user.pk
    presence_leave(connection_ids=["fast"])
    with transaction.atomic():
        presence_leave(connection_ids=["orm"])
    assert not Presence.objects.exists()
    # Connections joining together (RoomHub.join): a row each, in one statement.
    together = {"t1": user.pk, "t2": other_user.pk, "t3": user.pk}
    with django_assert_num_queries(1):
        presence_join(room_id=room.pk, members=together)
    with transaction.atomic():
        presence_join(room_id=room.pk, members={f"orm-{key}": pk for key, pk in together.items()})
    rows = dict(Presence.objects.filter(room_id=room.pk).values_list("connection_id", "user_id"))
    assert rows == {**together, **{f"orm-{key}": pk for key, pk in together.items()}}
    presence_leave(connection_ids=list(rows))
    # A hundred commits, each of which would otherwise wait for the WAL to reach the disk
    # (the WAL writer's own flushes, every 200 ms, may count).
    before = wal_syncs()
    for n in range(50):
        presence_join(room_id=room.pk, members={f"c{n}": user.pk})
        presence_leave(connection_ids=[f"c{n}"])
    assert wal_syncs() - before < 20


def test_a_touch_restores_rows_another_server_pruned(user: Any) -> None:
    room = room_get_or_create(name="general")
    presence_join(room_id=room.pk, members={"a!1": user.pk})
    Presence.objects.all().delete()
    assert presence_touch(room_id=room.pk, members={"a!1": user.pk}) == {user.pk}
    assert presence_touch(room_id=room.pk, members={"a!1": user.pk}) == set()
    assert presence_users(room_id=room.pk).names == ["alice"]


def sequenced_message(room: Room, author: Any, body: str) -> Message:
    """A message that has its place in the room's order (what can be edited, reacted to)."""
    result = message_post(room=room, author=author, body=body)
    messages_sequence(room_id=room.pk)
    result.message.refresh_from_db()
    return result.message


def test_an_edit_keeps_the_earlier_text_and_takes_the_next_seq(user: Any, other_user: Any) -> None:
    room = room_get_or_create(name="general")
    message = sequenced_message(room, user, "helo")
    edited = message_edit(room=room, user=user, message_id=message.pk, body=" hello ")
    assert (edited.body, edited.edited_at is not None) == ("hello", True)
    assert messages_sequence(room_id=room.pk) == 1
    event = MessageEvent.objects.get()
    assert (event.action, event.previous_body, event.seq) == ("edit", "helo", 2)
    assert [r["body"] for r in revisions_of(message=edited)] == ["helo"]
    with pytest.raises(NotAllowed, match="Only its author may edit"):
        message_edit(room=room, user=other_user, message_id=message.pk, body="mine now")
    with pytest.raises(NotAllowed, match="earlier texts"):
        revisions_allowed(room=room, user=other_user, message_id=message.pk)
    assert revisions_allowed(room=room, user=user, message_id=message.pk) == message


def test_a_delete_leaves_a_tombstone_and_the_owner_may_delete_any(
    user: Any, other_user: Any
) -> None:
    room = room_create(creator=user, title="Team", private=True)
    room_invite(room=room, by=user, username=other_user.username)
    bobs = sequenced_message(room, other_user, "oops")
    alices = sequenced_message(room, user, "mine")
    with pytest.raises(NotAllowed, match="author or the room's owner"):
        message_delete(room=room, user=other_user, message_id=alices.pk)
    deleted = message_delete(room=room, user=user, message_id=bobs.pk)
    assert (deleted.body, deleted.deleted_at is not None) == ("", True)
    assert revisions_of(message=deleted)[0]["body"] == "oops"
    with pytest.raises(NotAllowed, match="cannot be edited"):
        message_edit(room=room, user=other_user, message_id=bobs.pk, body="back")
    message_delete(room=room, user=user, message_id=bobs.pk)
    assert MessageEvent.objects.filter(action="delete").count() == 1, "a second delete is none"


def test_actions_on_another_room_s_message_or_by_a_non_member_find_nothing(
    user: Any, other_user: Any
) -> None:
    private = room_create(creator=user, title="Secret", private=True)
    secret = sequenced_message(private, user, "secret")
    general = room_get_or_create(name="general")
    for action in (
        lambda: message_edit(room=general, user=user, message_id=secret.pk, body="x"),
        lambda: message_delete(room=general, user=user, message_id=secret.pk),
        lambda: reaction_set(room=general, user=user, message_id=secret.pk, emoji="👍", on=True),
    ):
        with pytest.raises(MessageNotFound, match=f"no message {secret.pk} in this room"):
            action()
    for action in (
        lambda: message_post(room=private, author=other_user, body="let me in"),
        lambda: message_delete(room=private, user=other_user, message_id=secret.pk),
        lambda: reaction_set(
            room=private, user=other_user, message_id=secret.pk, emoji="👍", on=True
        ),
        lambda: read_mark(room=private, user=other_user, seq=1),
    ):
        with pytest.raises(RoomNotFound):
            action()
    assert Message.objects.get(pk=secret.pk).body == "secret"


def test_a_reaction_is_one_per_user_per_emoji_and_counts(user: Any, other_user: Any) -> None:
    room = room_get_or_create(name="general")
    message = sequenced_message(room, user, "party")
    assert reaction_set(room=room, user=user, message_id=message.pk, emoji="🎉", on=True)
    assert not reaction_set(room=room, user=user, message_id=message.pk, emoji="🎉", on=True)
    assert reaction_set(room=room, user=other_user, message_id=message.pk, emoji="🎉", on=True)
    assert reaction_set(room=room, user=other_user, message_id=message.pk, emoji="👍", on=True)
    assert reactions_of([message.pk])[message.pk] == [
        {"emoji": "👍", "count": 1, "users": ["bob"]},
        {"emoji": "🎉", "count": 2, "users": ["alice", "bob"]},
    ]
    assert reaction_set(room=room, user=user, message_id=message.pk, emoji="🎉", on=False)
    assert MessageEvent.objects.filter(action="reaction").count() == 4
    with pytest.raises(InvalidFrame, match="'emoji' must be one of"):
        reaction_set(room=room, user=user, message_id=message.pk, emoji="🦄", on=True)
    with pytest.raises(InvalidFrame, match="'on' must be true"):
        reaction_set(room=room, user=user, message_id=message.pk, emoji="👍", on="yes")


def test_read_markers_move_forward_only_and_unread_counts_follow(
    user: Any, other_user: Any
) -> None:
    room = room_get_or_create(name="general")
    room_open(name="general", user=other_user)
    for n in range(3):
        sequenced_message(room, user, f"m{n}")
    sequenced_message(room, other_user, "bob's own")
    assert unread_count(room=room, user_id=other_user.pk) == 3, "one's own are never unread"
    assert read_mark(room=room, user=other_user, seq=2) == 2
    assert read_mark(room=room, user=other_user, seq=1) is None
    assert read_seq(room=room, user_id=other_user.pk) == 2
    assert unread_count(room=room, user_id=other_user.pk) == 1
    assert [r.unread for r in rooms_with_unread(user_id=other_user.pk)] == [1]
    assert read_mark(room=room, user=other_user, seq=99) == 4, "never beyond the room"
    assert unread_count(room=room, user_id=other_user.pk) == 0
    with pytest.raises(InvalidFrame, match="'seq' must be"):
        read_mark(room=room, user=other_user, seq="3")


def test_a_new_member_has_nothing_unread(user: Any, other_user: Any) -> None:
    room = room_get_or_create(name="general")
    sequenced_message(room, user, "before bob")
    room_open(name="general", user=other_user)
    assert unread_count(room=room, user_id=other_user.pk) == 0


def test_mentions_are_the_members_named_with_an_at(user: Any, other_user: Any) -> None:
    room = room_get_or_create(name="general")
    room_open(name="general", user=other_user)
    message = message_post(
        room=room, author=user, body="@bob, see @carol and @alice; mail a@bob.example @bob."
    ).message
    assert message.mentions == ["bob"], "members only, not the author, not inside an address"


def test_typing_notices_are_due_once_per_interval(settings: Any) -> None:
    settings.CHAT = {**settings.CHAT, "TYPING_INTERVAL": 2.0}
    assert typing_due(last_sent=0.0, now=100.0)
    assert not typing_due(last_sent=100.0, now=101.5)
    assert typing_due(last_sent=100.0, now=102.0)


def test_a_big_room_gets_its_notices_less_often(settings: Any) -> None:
    settings.CHAT = {
        **settings.CHAT,
        "NOTICE_SENDS": 500,
        "TYPING_BATCH": 0.5,
        "TYPING_BATCH_MAX": 2.0,
        "PRESENCE_BATCH": 0.5,
        "PRESENCE_BATCH_MAX": 5.0,
    }

    def typing(connections: int) -> float:
        return notice_batch(connections=connections, kind="TYPING")

    assert typing(3) == 0.5
    assert typing(500) == 1.0
    # 1,000 connections: one frame each every 2 s, 500 frames a second in all.
    assert typing(1000) == 2.0
    assert typing(50_000) == 2.0
    assert notice_batch(connections=1000, kind="PRESENCE") == 2.0
    assert notice_batch(connections=50_000, kind="PRESENCE") == 5.0
    # A name typed on (one notice per interval) is repeated before the page drops it, on the
    # typist's server and, one forward later, on the others.
    defaults = project_settings.CHAT
    assert (
        defaults["TYPING_INTERVAL"] + defaults["TYPING_BATCH"] + defaults["TYPING_BATCH_MAX"]
        < defaults["TYPING_EXPIRE"]
    )
