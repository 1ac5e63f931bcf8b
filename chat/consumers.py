"""`/ws/chat/<room>/`: a room's messages in order, with history, replay, acks and presence.

The protocol (frame types, payloads, close codes) is described in chat/events.py. Live
messages reach a connection through its room's hub (chat/hub.py), not through a channel of its
own.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from chat import events
from chat.exceptions import ChatError, InvalidFrame, InvalidRoomName, RateLimited
from chat.hub import RoomHub, room_hub
from chat.models import Room
from chat.selectors import ack_payload, history_on_connect, messages_before
from chat.services import message_post, message_rate_check, room_get_or_create
from wire.close import Close
from wire.errors import error_payload


class ChatConsumer(AsyncWebsocketConsumer):
    # No channel per connection: the room's hub receives for all of this process's
    # connections, and Channels' per-message work for each of them is saved.
    channel_layer_alias = None

    room: Room
    user_id: int
    connection_id: str
    hub: RoomHub | None = None
    # The last seq this connection's client has; frames wait in `held` until history is sent.
    cursor = 0
    live = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(Close.UNAUTHENTICATED)
            return
        try:
            self.room = await database_sync_to_async(room_get_or_create)(
                name=self.scope["url_route"]["kwargs"]["room"]
            )
        except InvalidRoomName:
            await self.refuse(Close.BAD_ROOM)
            return
        self.user = user
        self.user_id = user.pk
        self.connection_id = uuid.uuid4().hex
        self.held: list[tuple[str, int | None]] = []
        await self.accept()
        # Join before reading history: a message released meanwhile is then either in the
        # history or held here (and dropped by its seq if it is in both).
        self.hub = room_hub(self.room, get_channel_layer())
        users = await self.hub.join(self)
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

    async def refuse(self, code: int) -> None:
        # Accept first: a socket closed during the handshake shows the browser a bare 403,
        # while a close code tells the page why (and that reconnecting will not help).
        await self.accept()
        # A plain int: autobahn (daphne's websocket layer) refuses an IntEnum as a close code.
        await self.close(code=int(code))

    def query_since(self) -> int | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since")
        if not values:
            return None
        try:
            since = int(values[0])
        except ValueError:
            return None
        return since if since >= 0 else None

    async def disconnect(self, code: int) -> None:
        await self.leave_room()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A consumer that fails never gets its disconnect: its presence must end anyway.
            await self.leave_room()

    async def leave_room(self) -> None:
        """Undo what connect joined; the second call finds nothing to do."""
        hub, self.hub = self.hub, None
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

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame: dict[str, Any] = {}
        try:
            frame = self.decode(text_data, bytes_data)
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
            await self.send_error(error, client_id=frame.get("client_id"))

    @staticmethod
    def decode(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
        limit = int(settings.CHAT["FRAME_MAX_BYTES"])
        if text_data is None:
            raise InvalidFrame("Frames must be JSON text, not binary.")
        if len(text_data) > limit:
            raise InvalidFrame(f"Frame too large: the limit is {limit} bytes.")
        try:
            frame = json.loads(text_data)
        except ValueError:
            raise InvalidFrame("Frames must be JSON objects; this one is not JSON.") from None
        if not isinstance(frame, dict):
            raise InvalidFrame("Frames must be JSON objects.")
        return frame

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
        page = await database_sync_to_async(messages_before)(room=self.room, before=before)
        await self.send_json(page)

    async def send_error(self, error: ChatError, *, client_id: Any = None) -> None:
        extra: dict[str, Any] = {}
        if isinstance(client_id, str):
            extra["client_id"] = client_id
        if isinstance(error, RateLimited):
            extra["retry_after"] = round(error.retry_after, 1)
        await self.send_json(
            error_payload(type=events.CHAT_ERROR, code=error.code, error=str(error), **extra)
        )

    async def send_json(self, content: Any) -> None:
        await self.send(text_data=json.dumps(content))
