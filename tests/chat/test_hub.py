"""A room's hub, seen through real connections: a dropped broadcast read from the database,
presence batched and expired."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from chat import hub, selectors, services
from chat.hub import RoomHub
from chat.models import Message, Presence, Room
from chat.publishing import messages_sequence
from chat.services import message_post, room_get_or_create
from tests.chat.conftest import (
    entered,
    frames_until,
    is_message,
    joined,
    messages_in,
    open_chat,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_layer")]


async def test_a_dropped_broadcast_is_read_from_the_database_when_the_next_arrives(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)

    @database_sync_to_async
    def sequenced_but_never_broadcast() -> None:
        room = Room.objects.get(name="general")
        message_post(room=room, author=user, body="lost in the layer", client_id="lost")
        messages_sequence(room_id=room.pk)
        Message.objects.filter(client_id="lost").update(published_at=timezone.now())

    await sequenced_but_never_broadcast()
    await alice.send_json_to({"type": "chat.message", "body": "next one", "client_id": "next"})
    seen = messages_in(await frames_until(bob, is_message("next one")))
    assert [(m["seq"], m["body"]) for m in seen] == [(1, "lost in the layer"), (2, "next one")]
    await alice.disconnect()
    await bob.disconnect()


async def test_presence_follows_joins_and_leaves(user: Any, other_user: Any, password: str) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    bob = await open_chat("/ws/chat/general/", other_user, password)
    _, bobs_view = await joined(bob)
    assert (bobs_view["users"], bobs_view["count"]) == (["alice", "bob"], 2)
    change = await frames_until(alice, lambda f: "bob" in f.get("joined", []))
    assert change[-1]["type"] == "chat.presence"
    assert change[-1]["count"] == 2
    # A second tab of bob's, closed again, does not make him leave.
    bob_tab = await entered("/ws/chat/general/", other_user, password)
    await bob_tab.disconnect()
    await asyncio.sleep(0.2)
    await bob.disconnect()
    change = await frames_until(alice, lambda f: "bob" in f.get("left", []))
    assert all("bob" not in f.get("left", []) for f in change[:-1])
    await alice.disconnect()
    await asyncio.sleep(0.1)


async def test_a_room_left_by_everyone_at_once_closes_its_hub_once(
    monkeypatch: Any, user: Any, other_user: Any, password: str
) -> None:
    closes: list[int] = []
    close = RoomHub.close

    async def counted(closing: RoomHub) -> None:
        closes.append(closing.room_id)
        await close(closing)

    monkeypatch.setattr(RoomHub, "close", counted)
    deletes: list[list[str]] = []

    def presence_leave(*, connection_ids: list[str]) -> None:
        deletes.append(connection_ids)
        services.presence_leave(connection_ids=connection_ids)

    monkeypatch.setattr(hub, "presence_leave", presence_leave)
    sockets = [
        await open_chat("/ws/chat/general/", someone, password)
        for someone in (user, other_user) * 3
    ]
    for socket in sockets:
        await joined(socket)
    # As in a reconnect storm: every leave is under way before the first is recorded.
    await asyncio.gather(*(socket.disconnect() for socket in sockets))
    assert len(closes) == 1
    # Their presence rows deleted together, not in a statement each.
    assert sorted(len(ids) for ids in deletes)[-1] > 1
    assert sum(len(ids) for ids in deletes) == 6
    assert not await database_sync_to_async(Presence.objects.exists)()
    # The room's next connection gets a new hub, which works.
    again = await entered("/ws/chat/general/", user, password)
    await again.disconnect()
    assert len(closes) == 2


@dataclass
class Joiner:
    """A connection as the hub needs it (chat.hub.Member)."""

    connection_id: str
    user_id: int
    username: str

    async def deliver(self, text: str, seq: int | None = None) -> None:
        pass

    async def dismiss(self) -> None:
        pass


async def test_connections_joining_at_once_write_their_presence_together(
    monkeypatch: Any, user: Any, other_user: Any
) -> None:
    writes: list[dict[str, int]] = []

    def presence_join(*, room_id: int, members: dict[str, int]) -> None:
        writes.append(members)
        services.presence_join(room_id=room_id, members=members)

    last_seq_reads: list[int] = []

    def room_last_seq(*, room_id: int) -> int:
        last_seq_reads.append(room_id)
        return selectors.room_last_seq(room_id=room_id)

    monkeypatch.setattr(hub, "presence_join", presence_join)
    monkeypatch.setattr(hub, "room_last_seq", room_last_seq)
    room = await database_sync_to_async(room_get_or_create)(name="general")
    await database_sync_to_async(Room.objects.filter(pk=room.pk).update)(last_seq=7)
    room_hub = RoomHub(room, get_channel_layer())
    await room_hub.subscribed_once()  # which reads the room's last seq for the hub itself
    last_seq_reads.clear()
    joiners = [
        Joiner(f"c{n}", someone.pk, someone.username)
        for n, someone in enumerate([user, other_user] * 3)
    ]

    def reads(n: int) -> Callable[[int], tuple[int, int]]:
        def read(last_seq: int) -> tuple[int, int]:
            if n == 4:
                raise LookupError("this connection's read failed")
            return n * 10, last_seq

        return read

    # As in a reconnect storm: every join under way before the first is written.
    outcomes = await asyncio.gather(
        *(room_hub.join(joiner, then=reads(n)) for n, joiner in enumerate(joiners)),
        return_exceptions=True,
    )
    assert writes == [{joiner.connection_id: joiner.user_id for joiner in joiners}]
    assert last_seq_reads == [room.pk]
    # One read of who is present, which counts them all; each connection's own reads its own.
    for n, outcome in enumerate(outcomes):
        if n == 4:
            assert isinstance(outcome, LookupError)
            continue
        assert not isinstance(outcome, BaseException)
        present, own = outcome
        # The room's last seq, read once for all of them after they joined.
        assert (present.names, present.count, own) == (["alice", "bob"], 2, (n * 10, 7))
    assert await database_sync_to_async(Presence.objects.count)() == 6
    for joiner in joiners:
        await room_hub.leave(joiner)
    assert not await database_sync_to_async(Presence.objects.exists)()


async def test_a_connect_to_a_crowded_room_is_sent_a_page_of_names_and_how_many(
    settings: Any, user: Any, other_user: Any, password: str
) -> None:
    settings.CHAT = {**settings.CHAT, "PRESENCE_LIST": 1}
    alice = await entered("/ws/chat/general/", user, password)
    bob = await open_chat("/ws/chat/general/", other_user, password)
    _, bobs_view = await joined(bob)
    assert (bobs_view["users"], bobs_view["count"]) == (["alice"], 2)
    await bob.disconnect()
    change = await frames_until(alice, lambda f: "bob" in f.get("left", []))
    assert change[-1]["count"] == 1
    await alice.disconnect()
    await asyncio.sleep(0.1)


async def test_a_connection_left_behind_by_a_dead_server_expires(
    settings: Any, user: Any, other_user: Any, password: str
) -> None:
    settings.CHAT = {**settings.CHAT, "PRESENCE_HEARTBEAT": 0.2, "PRESENCE_TTL": 1}
    room = await database_sync_to_async(room_get_or_create)(name="general")

    @database_sync_to_async
    def ghost() -> None:
        from chat.services import presence_join

        presence_join(room_id=room.pk, members={"dead-server!ghost": other_user.pk})

    await ghost()
    alice = await open_chat("/ws/chat/general/", user, password)
    _, presence = await joined(alice)
    assert presence["users"] == ["alice", "bob"]
    frames = await frames_until(alice, lambda f: "bob" in f.get("left", []), timeout=5)
    assert frames[-1]["type"] == "chat.presence"
    await alice.disconnect()
    await asyncio.sleep(0.1)
