"""`/ws/chat/<room>/`: a room's messages in order, with history, replay, acks and presence.

The protocol (frame types, payloads) is described in chat/events.py; what every socket of the
site shares (login, limits, session checks, frame decoding, close codes) in wire/sockets.py.
Live messages reach a connection through its room's hub (chat/hub.py), not through a channel
of its own.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import events
from chat.exceptions import ChatError, InvalidFrame, InvalidRoomName, RateLimited, RoomNotFound
from chat.hub import RoomHub, room_hub
from chat.models import Room
from chat.selectors import ack_payload, history_on_connect, messages_before
from chat.services import (
    history_rate_check,
    message_post,
    message_rate_check,
    room_create_rate_check,
    room_is_new,
    room_open,
)
from wire.close import Close
from wire.sockets import SiteConsumer


class ChatConsumer(SiteConsumer):
    # No channel per connection: the room's hub receives for all of this process's
    # connections, and Channels' per-message work for each of them is saved.
    channel_layer_alias = None
    error_type = events.CHAT_ERROR

    room: Room
    user_id: int
    connection_id: str
    room_hub: RoomHub | None = None
    # The last seq this connection's client has; frames wait in `held` until history is sent.
    cursor = 0
    live = False

    async def start(self) -> None:
        name = self.scope["url_route"]["kwargs"]["room"]
        try:
            if await database_sync_to_async(room_is_new)(name=name):
                await room_create_rate_check(user_id=self.user.pk)
            room = await database_sync_to_async(room_open)(name=name, user=self.user)
        except InvalidRoomName:
            await self.refuse(Close.BAD_ROOM)
            return
        except RoomNotFound:
            await self.refuse(Close.NOT_FOUND)
            return
        except RateLimited:
            await self.refuse(Close.TOO_MANY)
            return
        self.room = room
        self.user_id = self.user.pk
        self.connection_id = uuid.uuid4().hex
        self.held: list[tuple[str, int | None]] = []
        await self.accept()
        # Join before reading history: a message released meanwhile is then either in the
        # history or held here (and dropped by its seq if it is in both).
        self.room_hub = room_hub(self.room, get_channel_layer())
        users = await self.room_hub.join(self)
        replay = await database_sync_to_async(history_on_connect)(
            room=self.room, since=self.query_since()
        )
        for frame in replay.frames:
            await self.send_json(frame)
        self.cursor = replay.cursor
        await self.send_json({"type": events.CHAT_PRESENCE, "users": users})
        self.live = True
        for text, seq in self.held:
            await self.deliver(text, seq)
        self.held = []

    def query_since(self) -> int | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since")
        if not values:
            return None
        try:
            since = int(values[0])
        except ValueError:
            return None
        return since if since >= 0 else None

    async def dismiss(self) -> None:
        await self.close(code=Close.NOT_FOUND)
        await self.end()

    async def stop(self) -> None:
        """Leave the room's hub (its presence ends with it)."""
        hub, self.room_hub = self.room_hub, None
        if hub is not None:
            await hub.leave(self)

    async def deliver(self, text: str, seq: int | None = None) -> None:
        """Send a frame from the hub; a message (with its seq) once, and never one the
        client already has from its history."""
        if not self.live:
            self.held.append((text, seq))
            return
        if seq is not None:
            if seq <= self.cursor:
                return
            self.cursor = seq
        await self.send(text_data=text)

    # Frames from the client.

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        try:
            if frame.get("type") == events.CHAT_MESSAGE:
                await self.post(frame)
            elif frame.get("type") == events.CHAT_HISTORY:
                await self.send_older(frame)
            else:
                raise InvalidFrame(
                    f"Unknown frame type {frame.get('type')!r}: send "
                    f"{events.CHAT_MESSAGE!r} or {events.CHAT_HISTORY!r}."
                )
        except ChatError as error:
            await self.send_chat_error(error, client_id=frame.get("client_id"))

    async def post(self, frame: dict[str, Any]) -> None:
        await message_rate_check(user_id=self.user_id)
        result = await database_sync_to_async(message_post)(
            room=self.room,
            author=self.user,
            body=frame.get("body"),
            client_id=frame.get("client_id"),
            reply_to=self.connection_id,
        )
        await self.send_json(ack_payload(result.message))

    async def send_older(self, frame: dict[str, Any]) -> None:
        before = frame.get("before")
        if isinstance(before, bool) or not isinstance(before, int) or before < 1:
            raise InvalidFrame("'before' must be the seq of the oldest message you have.")
        await history_rate_check(user_id=self.user_id)
        page = await database_sync_to_async(messages_before)(room=self.room, before=before)
        await self.send_json(page)

    async def send_chat_error(self, error: ChatError, *, client_id: Any = None) -> None:
        extra: dict[str, Any] = {}
        if isinstance(client_id, str):
            extra["client_id"] = client_id
        if isinstance(error, RateLimited):
            extra["retry_after"] = round(error.retry_after, 1)
        await self.send_error(code=error.code, error=str(error), **extra)
