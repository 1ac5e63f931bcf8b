"""The chat websocket through the whole ASGI stack, with the `chat-messages` worker running on
the test's event loop: history, broadcast, acks, replay, paging, errors, limits."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from chat.models import Message, Room
from tests.chat.conftest import (
    entered,
    frames_for,
    frames_until,
    is_message,
    joined,
    messages_in,
    open_chat,
    post_published,
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
    assert presence == {"type": "chat.presence", "users": ["alice"]}
    assert await database_sync_to_async(Room.objects.filter(name=name).exists)()
    await communicator.disconnect()


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
        ('{"type": "chat.typing"}', "bad_frame", "Unknown frame type 'chat.typing'"),
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
