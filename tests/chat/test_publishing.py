"""Numbering a room's messages in order and broadcasting them once, on the real database and
channel layer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from chat.models import Message, Room
from chat.publishing import messages_publish, messages_sequence
from chat.services import (
    message_post,
    room_get_or_create,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


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
