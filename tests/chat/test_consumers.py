"""The chat websocket through the whole ASGI stack, with the `chat-messages` worker running on
the test's event loop: history, broadcast, acks, replay, paging, errors, limits; edits, deletes
and reactions live and replayed, typing, mentions, activity and read markers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from chat.events import room_group
from chat.models import Message, MessageEvent, Room
from chat.publishing import messages_sequence
from chat.selectors import read_seq
from chat.services import message_edit, room_open
from project.asgi import application
from tests.chat.conftest import (
    SAME_ORIGIN,
    entered,
    frames_for,
    frames_until,
    is_message,
    joined,
    messages_in,
    open_chat,
    post_published,
    session_cookie,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


async def test_anonymous_connections_are_refused_with_4401() -> None:
    communicator = await open_chat("/ws/chat/general/")
    assert await communicator.receive_output(5) == {"type": "websocket.close", "code": 4401}


@pytest.mark.parametrize(
    "room",
    ["bad.name", "x" * 65, "", "white space", "caf%C3%A9", "%3Cscript%3E"],
    ids=["dot", "65-chars", "empty", "space", "non-ascii", "markup"],
)
async def test_bad_room_names_are_refused_with_4400(user: Any, password: str, room: str) -> None:
    communicator = await open_chat(f"/ws/chat/{room}/", user, password)
    assert await communicator.receive_output(5) == {"type": "websocket.close", "code": 4400}
    assert not await database_sync_to_async(Room.objects.exists)()


async def test_a_64_character_room_is_created_on_first_use(user: Any, password: str) -> None:
    name = "A-z_9" + "x" * 59
    communicator = await open_chat(f"/ws/chat/{name}/", user, password)
    history, presence = await joined(communicator)
    assert history == {"type": "chat.history", "messages": [], "has_more": False}
    assert presence == {"type": "chat.presence", "users": ["alice"], "count": 1, "limit": 100}
    assert await database_sync_to_async(Room.objects.filter(name=name).exists)()
    await communicator.disconnect()


async def test_a_connect_does_not_wait_for_channels_one_database_thread(
    user: Any, password: str
) -> None:
    # Every database call of a connect (the session, the user, the room, history, presence)
    # runs in the connect pool: with Channels' one database thread busy, as with the other
    # sockets' calls in a reconnect storm, a socket still connects, joins and leaves.
    cookie = await session_cookie(user, password)
    release = threading.Event()
    busy = asyncio.ensure_future(database_sync_to_async(release.wait)(30))
    try:
        communicator = WebsocketCommunicator(
            application, "/ws/chat/general/", headers=[*SAME_ORIGIN, (b"cookie", cookie)]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        history, presence = await joined(communicator)
        assert history["type"] == "chat.history"
        assert presence == {"type": "chat.presence", "users": ["alice"], "count": 1, "limit": 100}
        await communicator.disconnect()
        assert not busy.done()
    finally:
        release.set()
        await busy


async def test_connect_sends_the_latest_50_messages_oldest_first(user: Any, password: str) -> None:
    await post_published("general", user, [f"message {n}" for n in range(1, 61)])
    communicator = await open_chat("/ws/chat/general/", user, password)
    history, _ = await joined(communicator)
    assert [m["seq"] for m in history["messages"]] == list(range(11, 61))
    assert [m["body"] for m in history["messages"]][:2] == ["message 11", "message 12"]
    assert history["has_more"] is True
    first = history["messages"][0]
    assert set(first) >= {"type", "id", "seq", "room", "author", "body", "created_at"}
    assert (first["room"], first["author"]) == ("general", "alice")
    await communicator.disconnect()


async def test_older_history_pages_in_with_before(user: Any, password: str) -> None:
    await post_published("general", user, [f"message {n}" for n in range(1, 61)])
    communicator = await entered("/ws/chat/general/", user, password)
    await communicator.send_json_to({"type": "chat.history", "before": 11})
    page = await communicator.receive_json_from(5)
    assert page["type"] == "chat.history"
    assert page["before"] == 11
    assert [m["seq"] for m in page["messages"]] == list(range(1, 11))
    assert page["has_more"] is False
    await communicator.disconnect()


async def test_a_message_is_acked_to_its_sender_and_broadcast_to_the_room(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)
    await alice.send_json_to({"type": "chat.message", "body": "  hello bob  ", "client_id": "c-1"})

    to_alice = await frames_until(alice, is_message("hello bob"))
    acks = [(f["client_id"], f["status"], f["seq"]) for f in to_alice if f["type"] == "chat.ack"]
    # "accepted" is the consumer's answer, "sequenced" the worker's: either may come first,
    # but the seq is always known before the message arrives.
    assert sorted(acks) == [("c-1", "accepted", None), ("c-1", "sequenced", 1)]
    message = to_alice[-1]
    assert message["seq"] == 1
    assert message["author"] == "alice"
    assert message["client_id"] == "c-1"
    assert message["room"] == "general"

    to_bob = await frames_until(bob, is_message("hello bob"))
    assert messages_in(to_bob) == [message]
    assert not [f for f in to_bob if f["type"] == "chat.ack"], "only the sender gets acks"
    await alice.disconnect()
    await bob.disconnect()


async def test_a_retried_client_id_is_stored_once_and_acked_with_the_first_message(
    chat_worker: Any, user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    await alice.send_json_to({"type": "chat.message", "body": "once", "client_id": "same"})
    first = await frames_until(alice, is_message("once"))
    await alice.send_json_to({"type": "chat.message", "body": "once", "client_id": "same"})
    ack = (await frames_until(alice, lambda f: f["type"] == "chat.ack"))[-1]
    assert (ack["status"], ack["seq"], ack["id"]) == ("sequenced", 1, messages_in(first)[0]["id"])
    assert messages_in(await frames_for(alice, 0.5)) == []
    assert await database_sync_to_async(Message.objects.count)() == 1
    await alice.disconnect()


async def test_a_reconnect_with_since_gets_exactly_what_it_missed(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    await post_published("general", user, [f"before {n}" for n in range(1, 6)])
    alice = await entered("/ws/chat/general/", user, password)
    for n in range(1, 4):
        await alice.send_json_to(
            {"type": "chat.message", "body": f"while away {n}", "client_id": f"away-{n}"}
        )
    await frames_until(alice, is_message("while away 3"))

    bob = await open_chat("/ws/chat/general/?since=5", other_user, password)
    replay, _ = await joined(bob)
    assert [m["body"] for m in replay["messages"]] == [f"while away {n}" for n in range(1, 4)]
    assert [m["seq"] for m in replay["messages"]] == [6, 7, 8]
    # And live from there on: the next message once, nothing repeated.
    await alice.send_json_to({"type": "chat.message", "body": "welcome back", "client_id": "wb"})
    live = await frames_until(bob, is_message("welcome back"))
    assert [m["seq"] for m in messages_in(live)] == [9]
    await alice.disconnect()
    await bob.disconnect()


async def test_a_since_beyond_the_room_resets_to_the_latest(user: Any, password: str) -> None:
    await post_published("general", user, ["only"])
    communicator = await open_chat("/ws/chat/general/?since=99", user, password)
    history, _ = await joined(communicator)
    assert history["reset"] is True
    assert [m["body"] for m in history["messages"]] == ["only"]
    await communicator.disconnect()


async def test_missing_more_than_the_replay_limit_resets_to_the_latest(
    settings: Any, user: Any, password: str
) -> None:
    settings.CHAT = {**settings.CHAT, "REPLAY_MAX": 10, "HISTORY_SIZE": 5}
    await post_published("general", user, [f"m{n}" for n in range(1, 21)])
    communicator = await open_chat("/ws/chat/general/?since=5", user, password)
    history, _ = await joined(communicator)
    assert history["reset"] is True
    assert [m["seq"] for m in history["messages"]] == [16, 17, 18, 19, 20]
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ("not json at all", "bad_frame", "not JSON"),
        ("[1, 2]", "bad_frame", "JSON objects"),
        ('{"type": "chat.dance"}', "bad_frame", "Unknown frame type 'chat.dance'"),
        ('{"body": "no type"}', "bad_frame", "Unknown frame type None"),
        ('{"type": "chat.message", "body": "   \\n "}', "invalid", "empty"),
        ('{"type": "chat.message"}', "invalid", "needs a body"),
        ('{"type": "chat.message", "body": 42}', "invalid", "needs a body"),
        ('{"type": "chat.message", "body": "a\\u0000b"}', "invalid", "control characters"),
        ('{"type": "chat.message", "body": "\\ud800"}', "invalid", "not valid Unicode"),
        ('{"type": "chat.message", "body": "hi", "client_id": "a b"}', "invalid", "client_id"),
        ('{"type": "chat.history", "before": "x"}', "bad_frame", "'before'"),
        ('{"type": "chat.history", "before": 0}', "bad_frame", "'before'"),
    ],
)
async def test_bad_frames_get_a_chat_error_and_the_connection_stays_usable(
    chat_worker: Any, user: Any, password: str, frame: str, code: str, reason: str
) -> None:
    communicator = await entered("/ws/chat/general/", user, password)
    await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from(5)
    assert error["type"] == "chat.error"
    assert error["code"] == code
    assert reason in error["error"]
    await communicator.send_json_to({"type": "chat.message", "body": "still here"})
    await frames_until(communicator, is_message("still here"))
    assert await database_sync_to_async(Message.objects.count)() == 1
    await communicator.disconnect()


async def test_body_length_is_checked_after_trimming(
    chat_worker: Any, user: Any, password: str
) -> None:
    communicator = await entered("/ws/chat/general/", user, password)
    await communicator.send_json_to(
        {"type": "chat.message", "body": "x" * 2001, "client_id": "too-long"}
    )
    error = await communicator.receive_json_from(5)
    assert (error["type"], error["client_id"]) == ("chat.error", "too-long")
    assert "2001 characters long; the limit is 2000" in error["error"]
    longest = "é" * 2000
    await communicator.send_json_to({"type": "chat.message", "body": f"  {longest}\n"})
    frames = await frames_until(communicator, is_message(longest))
    assert messages_in(frames)[0]["seq"] == 1
    await communicator.disconnect()


async def test_oversized_and_binary_frames_are_refused_unread(user: Any, password: str) -> None:
    communicator = await entered("/ws/chat/general/", user, password)
    await communicator.send_to(text_data='{"type": "chat.message", "body": "' + "x" * 20000 + '"}')
    error = await communicator.receive_json_from(5)
    assert (error["code"], error["error"]) == (
        "bad_frame",
        "Frame too large: the limit is 16384 bytes.",
    )
    await communicator.send_to(bytes_data=b'{"type": "chat.message"}')
    error = await communicator.receive_json_from(5)
    assert error["error"] == "Frames must be JSON text, not binary."
    await communicator.disconnect()


async def test_the_rate_limit_refuses_the_excess_and_says_when_to_retry(
    chat_worker: Any, settings: Any, user: Any, other_user: Any, password: str
) -> None:
    settings.CHAT = {**settings.CHAT, "RATE_LIMIT": 3, "RATE_WINDOW": 3600}
    alice = await entered("/ws/chat/general/", user, password)
    for n in range(4):
        await alice.send_json_to({"type": "chat.message", "body": f"n{n}", "client_id": f"r{n}"})
    frames = await frames_until(alice, lambda f: f["type"] == "chat.error")
    error = frames[-1]
    assert error["code"] == "rate_limited"
    assert error["client_id"] == "r3"
    assert 0 < error["retry_after"] <= 3600
    assert "at most 3 messages per 3600 s" in error["error"]
    # The limit is the user's: bob still talks.
    bob = await entered("/ws/chat/general/", other_user, password)
    await bob.send_json_to({"type": "chat.message", "body": "bob here"})
    await frames_until(bob, is_message("bob here"))
    bodies = await database_sync_to_async(
        lambda: sorted(Message.objects.values_list("body", flat=True))
    )()
    assert bodies == ["bob here", "n0", "n1", "n2"]
    await alice.disconnect()
    await bob.disconnect()


async def posted(communicator: Any, body: str) -> dict[str, Any]:
    """Send a message and wait until it comes back numbered."""
    await communicator.send_json_to({"type": "chat.message", "body": body})
    return messages_in(await frames_until(communicator, is_message(body)))[-1]


def is_update(action: str) -> Any:
    return lambda frame: frame["type"] == "chat.update" and frame["action"] == action


async def test_edits_deletes_and_reactions_reach_the_room_live_and_through_since(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)
    first = await posted(alice, "helo")
    second = await posted(alice, "to be deleted")
    await frames_until(bob, is_message("to be deleted"))
    await alice.send_json_to({"type": "chat.edit", "message": first["id"], "body": "hello"})
    edit = (await frames_until(bob, is_update("edit")))[-1]
    assert (edit["seq"], edit["by"], edit["message"]["body"]) == (3, "alice", "hello")
    assert edit["message"]["edited_at"] is not None
    await bob.send_json_to({"type": "chat.react", "message": first["id"], "emoji": "👍"})
    reaction = (await frames_until(alice, is_update("reaction")))[-1]
    assert reaction["message"]["reactions"] == [{"emoji": "👍", "count": 1, "users": ["bob"]}]
    await alice.send_json_to({"type": "chat.delete", "message": second["id"]})
    tombstone = (await frames_until(bob, is_update("delete")))[-1]
    assert (tombstone["seq"], tombstone["message"]["deleted"]) == (5, True)
    assert tombstone["message"]["body"] == ""
    await bob.disconnect()

    # Bob comes back having seen seq 2: the three changes come with their own seqs.
    back = await open_chat("/ws/chat/general/?since=2", other_user, password)
    replay, _ = await joined(back)
    assert replay["messages"] == []
    assert [(u["seq"], u["action"]) for u in replay["updates"]] == [
        (3, "edit"),
        (4, "reaction"),
        (5, "delete"),
    ]
    # A fresh page gets the messages as they are now.
    fresh = await open_chat("/ws/chat/general/", other_user, password)
    history, _ = await joined(fresh)
    now = {m["seq"]: m for m in history["messages"]}
    assert (now[1]["body"], now[1]["reactions"][0]["count"]) == ("hello", 1)
    assert (now[2]["deleted"], now[2]["body"]) == (True, "")
    await alice.send_json_to({"type": "chat.message", "body": "after"})
    live = await frames_until(back, is_message("after"))
    assert [m["seq"] for m in messages_in(live)] == [6]
    for communicator in (alice, back, fresh):
        await communicator.disconnect()


async def test_an_update_dropped_by_the_layer_is_read_from_the_database(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)
    message = await posted(alice, "typo")

    @database_sync_to_async
    def edited_but_never_broadcast() -> None:
        room = Room.objects.get(name="general")
        message_edit(room=room, user=user, message_id=message["id"], body="fixed")
        messages_sequence(room_id=room.pk)
        MessageEvent.objects.update(published_at=timezone.now())

    await edited_but_never_broadcast()
    await alice.send_json_to({"type": "chat.message", "body": "next"})
    frames = await frames_until(bob, is_message("next"))
    assert [(f["type"], f["seq"]) for f in frames if "seq" in f] == [
        ("chat.message", 1),
        ("chat.update", 2),
        ("chat.message", 3),
    ]
    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ({"type": "chat.edit", "message": "1", "body": "x"}, "bad_frame", "'message' must be"),
        ({"type": "chat.edit", "message": 999, "body": "x"}, "not_found", "no message 999"),
        ({"type": "chat.edit", "message": 1, "body": ""}, "invalid", "empty"),
        ({"type": "chat.edit", "message": 1, "body": "x" * 2001}, "invalid", "2001 characters"),
        ({"type": "chat.delete"}, "bad_frame", "'message' must be"),
        ({"type": "chat.delete", "message": 999}, "not_found", "no message 999"),
        ({"type": "chat.react", "message": 1, "emoji": "🦄"}, "bad_frame", "'emoji' must be"),
        ({"type": "chat.react", "message": 1, "emoji": "👍", "on": 1}, "bad_frame", "'on'"),
        ({"type": "chat.react", "message": True, "emoji": "👍"}, "bad_frame", "'message'"),
        ({"type": "chat.read", "seq": -1}, "bad_frame", "'seq' must be"),
        ({"type": "chat.read", "seq": "1"}, "bad_frame", "'seq' must be"),
        ({"type": "chat.revisions", "message": None}, "bad_frame", "'message' must be"),
        ({"type": "chat.revisions", "message": 999}, "not_found", "no message 999"),
    ],
)
async def test_bad_frames_of_the_new_types_get_a_chat_error_and_the_socket_stays(
    chat_worker: Any, user: Any, password: str, frame: dict[str, Any], code: str, reason: str
) -> None:
    communicator = await entered("/ws/chat/general/", user, password)
    await posted(communicator, "one")
    await communicator.send_json_to(frame)
    error = (await frames_until(communicator, lambda f: f["type"] == "chat.error"))[-1]
    assert error["code"] == code
    assert reason in error["error"]
    await posted(communicator, "still here")
    await communicator.disconnect()


async def test_only_the_author_edits_and_only_author_or_owner_read_earlier_texts(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)
    message = await posted(alice, "first")
    await alice.send_json_to({"type": "chat.edit", "message": message["id"], "body": "second"})
    await frames_until(alice, is_update("edit"))
    await bob.send_json_to({"type": "chat.edit", "message": message["id"], "body": "bob's"})
    refused = (await frames_until(bob, lambda f: f["type"] == "chat.error"))[-1]
    assert (refused["code"], refused["error"]) == (
        "forbidden",
        "Only its author may edit a message.",
    )
    await bob.send_json_to({"type": "chat.revisions", "message": message["id"]})
    refused = (await frames_until(bob, lambda f: f["type"] == "chat.error"))[-1]
    assert refused["code"] == "forbidden"
    await alice.send_json_to({"type": "chat.revisions", "message": message["id"]})
    answer = (await frames_until(alice, lambda f: f["type"] == "chat.revisions"))[-1]
    assert [r["body"] for r in answer["revisions"]] == ["first"]
    await alice.disconnect()
    await bob.disconnect()


async def test_typing_is_batched_bounded_and_not_stored(
    settings: Any, user: Any, other_user: Any, password: str
) -> None:
    settings.CHAT = {**settings.CHAT, "TYPING_BATCH": 0.2, "TYPING_INTERVAL": 10}
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)
    for _ in range(20):
        await alice.send_json_to({"type": "chat.typing"})
    await bob.send_json_to({"type": "chat.typing"})
    frames = await frames_for(bob, 1.0)
    typing = [f for f in frames if f["type"] == "chat.typing"]
    assert typing == [{"type": "chat.typing", "users": ["alice", "bob"]}]
    assert not [f for f in frames if f["type"] == "chat.error"]
    assert not await database_sync_to_async(Message.objects.exists)()
    await alice.disconnect()
    await bob.disconnect()


async def test_who_typed_here_reaches_the_room_s_other_servers_in_one_layer_message(
    settings: Any, user: Any, other_user: Any, password: str
) -> None:
    settings.CHAT = {**settings.CHAT, "TYPING_BATCH": 1.0, "TYPING_INTERVAL": 10}
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)
    # Another server's hub, as the layer sees it: a channel in the room's group.
    layer = get_channel_layer()
    room = await database_sync_to_async(Room.objects.get)(name="general")
    group = room_group(room.pk)
    other_server = await layer.new_channel()
    await layer.group_add(group, other_server)

    async def typing_heard(seconds: float) -> list[dict[str, Any]]:
        """The typing notices the other server's channel gets within `seconds`."""
        heard = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    message = await layer.receive(other_server)
                    if message["type"] == "chat.typing":
                        heard.append(message)
        return heard

    await alice.send_json_to({"type": "chat.typing"})
    await bob.send_json_to({"type": "chat.typing"})
    forwarded = await typing_heard(2.5)
    assert [m["users"] for m in forwarded] == [["alice", "bob"]]
    # What another server forwards reaches the connections here, and is not sent on again.
    await layer.group_send(group, {"type": "chat.typing", "users": ["carol"], "hub": other_server})
    typing = await frames_until(alice, lambda f: "carol" in f.get("users", []))
    assert typing[-1] == {"type": "chat.typing", "users": ["carol"]}
    assert [m["hub"] for m in await typing_heard(1.5)] == [other_server]
    await layer.group_discard(group, other_server)
    await alice.disconnect()
    await bob.disconnect()


async def test_a_mention_and_new_messages_reach_the_user_s_page_in_another_room(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    await database_sync_to_async(room_open)(name="random", user=other_user)
    alice = await entered("/ws/chat/general/", user, password)
    bob_here = await entered("/ws/chat/general/", other_user, password)
    bob_elsewhere = await entered("/ws/chat/random/", other_user, password)
    await posted(alice, "plain news")
    activity = (await frames_until(bob_elsewhere, lambda f: f["type"] == "chat.activity"))[-1]
    assert activity == {"type": "chat.activity", "room": "general", "seq": 1, "author": "alice"}
    await posted(alice, "hey @bob look")
    mention = (await frames_until(bob_elsewhere, lambda f: f["type"] == "chat.mention"))[-1]
    assert (mention["room"], mention["seq"], mention["author"]) == ("general", 2, "alice")
    assert mention["body"] == "hey @bob look"
    seen = messages_in(await frames_until(bob_here, is_message("hey @bob look")))[-1]
    assert seen["mentions"] == ["bob"]
    for communicator in (alice, bob_here, bob_elsewhere):
        await communicator.disconnect()


async def test_reading_on_one_socket_tells_the_user_s_other_sockets(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    phone = await entered("/ws/chat/general/", other_user, password)
    laptop = await entered("/ws/chat/general/", other_user, password)
    for body in ("one", "two"):
        await posted(alice, body)
    await frames_until(laptop, is_message("two"))
    await phone.send_json_to({"type": "chat.read", "seq": 1})
    read = (await frames_until(laptop, lambda f: f["type"] == "chat.read"))[-1]
    assert read == {"type": "chat.read", "room": "general", "seq": 1, "unread": 1}
    room = await database_sync_to_async(Room.objects.get)(name="general")
    assert await database_sync_to_async(read_seq)(room=room, user_id=other_user.pk) == 1
    for communicator in (alice, phone, laptop):
        await communicator.disconnect()
