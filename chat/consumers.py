"""`/ws/chat/<room>/`: a room's messages in order, with history, replay, acks and presence.

The protocol (frame types, payloads) is described in chat/events.py; what every socket of the
site shares (login, limits, session checks, frame decoding, close codes) in wire/sockets.py.
Live messages reach a connection through its room's hub (chat/hub.py), not through a channel
of its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from chat import events
from chat.exceptions import ChatError, InvalidFrame, InvalidRoomName, RateLimited, RoomNotFound
from chat.hub import RoomHub, room_hub
from chat.models import Room
from chat.selectors import (
    ack_payload,
    history_on_connect,
    messages_before,
    revisions_of,
    rooms_of_each,
    unread_count,
)
from chat.services import (
    history_rate_check,
    message_delete,
    message_edit,
    message_post,
    message_rate_check,
    reaction_set,
    read_mark,
    read_notify,
    read_rate_check,
    revisions_allowed,
    room_create_rate_check,
    room_open,
    rooms_enter,
    typing_due,
)
from wire.batching import Batched, connect_db, per_loop
from wire.close import Close
from wire.sockets import SiteConsumer

logger = logging.getLogger(__name__)

# The other rooms whose new messages a page counts as unread, the most recently active first.
WATCH_MAX = 20
# The connects whose rooms and memberships are read in one statement at most (SQLite takes
# 999 values a statement: a name and a user each).
ENTERING_AT_ONCE = 400

# The connects' room reads that arrive together, made together (a reconnect storm's).
room_entries = per_loop(lambda: Batched(rooms_enter, most=ENTERING_AT_ONCE))
# The users' rooms, which their pages watch (the same).
rooms_reads = per_loop(lambda: Batched(rooms_of_each, most=ENTERING_AT_ONCE))


class ChatConsumer(SiteConsumer):
    # No channel per connection: the room's hub receives for all of this process's
    # connections, and Channels' per-message work for each of them is saved.
    channel_layer_alias = None
    error_type = events.CHAT_ERROR

    room: Room
    user_id: int
    username: str
    connection_id: str
    room_hub: RoomHub | None = None
    # The hubs of the user's other rooms, whose new messages this page counts as unread.
    watching: tuple[RoomHub, ...] = ()
    typing_sent = 0.0
    # The last seq this connection's client has; frames wait in `held` until history is sent.
    cursor = 0
    live = False

    async def start(self) -> None:
        name = self.scope["url_route"]["kwargs"]["room"]
        try:
            room = await room_entries().add_one((name, self.user))
            if room is None:
                await room_create_rate_check(user_id=self.user.pk)
                room = await connect_db(room_open)(name=name, user=self.user)
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
        self.username = self.user.get_username()
        self.connection_id = uuid.uuid4().hex
        self.held: list[tuple[str, int | None]] = []
        await self.accept()
        # Join before reading history: a message released meanwhile is then either in the
        # history or held here (and dropped by its seq if it is in both).
        self.room_hub = room_hub(self.room, get_channel_layer())
        since = self.query_since()
        present, replay = await self.room_hub.join(
            self,
            then=lambda last_seq: history_on_connect(room=room, since=since, last_seq=last_seq),
        )
        for frame in replay.frames:
            await self.send_json(frame)
        self.cursor = replay.cursor
        # This process's hub may be new to the room: pictures still being processed.
        sequenced: list[events.Sequenced] = []
        for frame in replay.frames:
            sequenced += [*frame["messages"], *frame.get("updates", [])]
        await self.room_hub.follow_pictures(sequenced)
        presence: events.PresencePayload = {
            "type": events.CHAT_PRESENCE,
            "users": present.names,
            "count": present.count,
            "limit": present.limit,
        }
        await self.send_json(presence)
        self.live = True
        for text, seq in self.held:
            await self.deliver(text, seq)
        self.held = []
        await self.watch_other_rooms(await rooms_reads().add_one(self.user_id))

    async def watch_other_rooms(self, others: list[Room]) -> None:
        """Hear of new messages in the user's other rooms (the sidebar's unread counts)."""
        layer = get_channel_layer()
        hubs = []
        for other in others[:WATCH_MAX]:
            if other.pk == self.room.pk:
                continue
            hub = room_hub(other, layer)
            try:
                await hub.watch(self)
            except Exception:
                # The counts come right on the next page load; the room itself works.
                logger.warning("room=%s not watched for user=%s", other.pk, self.user_id)
                continue
            hubs.append(hub)
        self.watching = tuple(hubs)

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
        watching, self.watching = self.watching, ()
        for other in watching:
            await other.unwatch(self)

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
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            events.CHAT_MESSAGE: self.post,
            events.CHAT_HISTORY: self.send_older,
            events.CHAT_EDIT: self.edit,
            events.CHAT_DELETE: self.delete,
            events.CHAT_REACT: self.react,
            events.CHAT_READ: self.read,
            events.CHAT_TYPING: self.typing,
            events.CHAT_REVISIONS: self.send_revisions,
            events.CHAT_PICTURE: self.post_picture,
        }
        try:
            handler = handlers.get(frame.get("type"))  # type: ignore[arg-type]
            if handler is None:
                raise InvalidFrame(
                    f"Unknown frame type {frame.get('type')!r}: send one of "
                    + ", ".join(repr(name) for name in handlers)
                    + "."
                )
            await handler(frame)
        except ChatError as error:
            await self.send_chat_error(error, client_id=frame.get("client_id"))

    async def post(self, frame: dict[str, Any], picture: Any = None) -> None:
        await message_rate_check(user_id=self.user_id)
        result = await database_sync_to_async(message_post)(
            room=self.room,
            author=self.user,
            body=frame.get("body"),
            client_id=frame.get("client_id"),
            reply_to=self.connection_id,
            picture=picture,
        )
        await self.send_json(ack_payload(result.message))

    async def post_picture(self, frame: dict[str, Any]) -> None:
        if frame.get("upload") is None:
            raise InvalidFrame(
                "A chat.picture needs 'upload': the id of one of your uploads (POST /api/uploads/)."
            )
        await self.post(frame, picture=frame["upload"])

    async def send_older(self, frame: dict[str, Any]) -> None:
        before = frame.get("before")
        if isinstance(before, bool) or not isinstance(before, int) or before < 1:
            raise InvalidFrame("'before' must be the seq of the oldest message you have.")
        await history_rate_check(user_id=self.user_id)
        page = await database_sync_to_async(messages_before)(room=self.room, before=before)
        await self.send_json(page)

    async def edit(self, frame: dict[str, Any]) -> None:
        await message_rate_check(user_id=self.user_id)
        await database_sync_to_async(message_edit)(
            room=self.room, user=self.user, message_id=frame.get("message"), body=frame.get("body")
        )

    async def delete(self, frame: dict[str, Any]) -> None:
        await message_rate_check(user_id=self.user_id)
        await database_sync_to_async(message_delete)(
            room=self.room, user=self.user, message_id=frame.get("message")
        )

    async def react(self, frame: dict[str, Any]) -> None:
        await message_rate_check(user_id=self.user_id)
        await database_sync_to_async(reaction_set)(
            room=self.room,
            user=self.user,
            message_id=frame.get("message"),
            emoji=frame.get("emoji"),
            on=frame.get("on", True),
        )

    async def read(self, frame: dict[str, Any]) -> None:
        await read_rate_check(user_id=self.user_id)
        await database_sync_to_async(self.read_sync)(frame.get("seq"))

    def read_sync(self, seq: Any) -> None:
        moved = read_mark(room=self.room, user=self.user, seq=seq)
        if moved is not None:
            unread = unread_count(room=self.room, user_id=self.user_id)
            read_notify(room=self.room, user=self.user, seq=moved, unread=unread)

    async def typing(self, frame: dict[str, Any]) -> None:
        now = time.monotonic()
        if not typing_due(last_sent=self.typing_sent, now=now):
            return
        self.typing_sent = now
        if self.room_hub is not None:
            self.room_hub.typed(self.username)

    async def send_revisions(self, frame: dict[str, Any]) -> None:
        message = await database_sync_to_async(revisions_allowed)(
            room=self.room, user=self.user, message_id=frame.get("message")
        )
        revisions = await database_sync_to_async(revisions_of)(message=message)
        await self.send_json(
            {"type": events.CHAT_REVISIONS, "message": message.pk, "revisions": revisions}
        )

    # Messages to the user, whichever room they are in.

    async def user_message(self, message: dict[str, Any]) -> None:
        """A mention of the user, or a room read on another of their sockets."""
        if message.get("type") in (events.CHAT_MENTION, events.CHAT_READ) and self.live:
            await self.send_json({k: v for k, v in message.items() if k != "user"})

    async def send_chat_error(self, error: ChatError, *, client_id: Any = None) -> None:
        extra: dict[str, Any] = {}
        if isinstance(client_id, str):
            extra["client_id"] = client_id
        if isinstance(error, RateLimited):
            extra["retry_after"] = round(error.retry_after, 1)
        await self.send_error(code=error.code, error=str(error), **extra)
