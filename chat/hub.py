"""A room as one server process sees it: the hub between the room's group and this process's
connections to the room.

The hub is the process's only member of the room's channel-layer group. It receives each
broadcast once, puts the messages in seq order (each once; one that arrives ahead of a missing
one waits, and if the gap does not close the hub reads it from the database), encodes each
message once and hands the same text to every local connection. A thousand connections then
cost one layer message and one JSON encoding per message, not a thousand of each; and a
connection outlives a Redis restart, since it holds no channel of its own.

Changes to messages (edits, deletes, reactions) come the same way, with seqs of the same
sequence. Typing notices do not: they are not stored, and the hub sends who is typing to its
connections at most once per TYPING_BATCH (less often in a big room), however many type; who
typed at its own connections it tells the room's other hubs in one layer message per
TYPING_BATCH, not one per notice.
Connections of the room's members to their other rooms may watch it: they get a short
`chat.activity` for each new message (the page counts it unread), not the message.

A message's picture is processed by an upload's jobs: while it is, the hub follows those jobs'
own groups (workers/events.py) and hands their progress events to its connections as
`chat.progress` frames, which are not stored (the outcome is: a `picture` change of the
message, in the room's sequence).

The hub also keeps presence: the truth is a `Presence` row per connection, shared by all
servers. The hub touches its connections' rows in one query per heartbeat (rows nobody touches
for PRESENCE_TTL belong to a dead server, and any hub of the room prunes them), and batches the
users whose presence may have changed: every PRESENCE_BATCH seconds (longer in a big room:
NOTICE_SENDS) it reads who of them is in the room now and broadcasts that, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings

from chat import events
from chat.delivery import Sequencer
from chat.models import Room
from chat.selectors import (
    Present,
    messages_between,
    presence_changes,
    presence_users,
    room_last_seq,
)
from chat.services import (
    notice_batch,
    presence_join,
    presence_leave,
    presence_prune,
    presence_touch,
)
from media_tasks.models import Upload
from wire.batching import Batched, connect_db
from workers import events as job_events

logger = logging.getLogger(__name__)

# Connections served between two pauses of a fan-out, so that other work on the loop goes on.
YIELD_EVERY = 50
# After the layer fails (Redis away), wait this long, doubling up to the maximum, before trying.
RETRY_FIRST, RETRY_MAX = 0.5, 10.0
# A picture's upload in these states has jobs to follow.
PICTURE_UNFINISHED = frozenset({Upload.Status.QUEUED, Upload.Status.PROCESSING})
JOB_EVENTS = frozenset({job_events.JOB_PROGRESS, job_events.JOB_DONE, job_events.JOB_FAILED})


class Member(Protocol):
    """A connection to the room, as the hub needs it."""

    connection_id: str
    user_id: int
    username: str

    async def deliver(self, text: str, seq: int | None = None) -> None: ...

    async def dismiss(self) -> None:
        """The user is no longer a member of the room: close the connection."""


# A connection joining the hub, with its reads (RoomHub.join), given the room's last seq.
type Joining = tuple[Member, Callable[[int], Any]]


class RoomHub:
    """This process's connections to one room."""

    def __init__(self, room: Room, layer: Any) -> None:
        self.room = room
        self.room_id = room.pk
        self.layer = layer
        self.group = events.room_group(room.pk)
        self.members: dict[str, Member] = {}
        # Leaves whose presence is being recorded; the hub closes after the last of them.
        self.leaving = 0
        self.closed = False
        # Their presence rows, written and deleted together (a room's connections often come
        # and go at once).
        self.joins: Batched[Joining, tuple[Present, dict[str, Any]]] = Batched(self.enter)
        self.leaves: Batched[str, None] = Batched(lambda ids: presence_leave(connection_ids=ids))
        # Connections to other rooms that count this room's new messages as unread.
        self.watchers: dict[str, Member] = {}
        self.typing: set[str] = set()
        self.typing_flusher: asyncio.Task[None] | None = None
        # Who typed at this process's connections, for the room's other hubs.
        self.typing_here: set[str] = set()
        self.typing_forwarder: asyncio.Task[None] | None = None
        self.channel = ""
        self.sequencer = Sequencer(0)
        self.subscribed: asyncio.Future[None] | None = None
        self.receiver: asyncio.Task[None] | None = None
        self.heartbeat: asyncio.Task[None] | None = None
        self.gap_filler: asyncio.Task[None] | None = None
        self.flusher: asyncio.Task[None] | None = None
        self.changed: set[int] = set()
        # The jobs of the room's unfinished pictures whose groups this hub's channel is in.
        self.following: set[int] = set()
        # Live messages and a gap being filled must not interleave their sends.
        self.delivery = asyncio.Lock()

    # Connections.

    async def join[T](self, member: Member, then: Callable[[int], T]) -> tuple[Present, T]:
        """Count the connection in; returns who is in the room, this user included, and what
        `then(last_seq)` (the connection's reads: its history) returns, read after the
        presence in the same trip to the database. From now on the member gets every message
        the hub releases: every message numbered after `last_seq`, the room's last seq read
        once the member was in, reaches it live."""
        self.members[member.connection_id] = member
        await self.subscribed_once()
        present, reads = await self.joins.add((member, then))
        read = reads[member.connection_id]
        if isinstance(read, Exception):
            raise read
        self.mark({member.user_id})
        return present, read

    def enter(self, joining: list[Joining]) -> tuple[Present, dict[str, Any]]:
        """The presence rows of the connections joining together (a storm's connects are
        mostly these trips: one for all, not one each) and one read of who is present (at
        5,000 present, 2 ms of the database's CPU each) and of the room's last seq; then
        each connection's reads, each its own outcome."""
        members = {member.connection_id: member.user_id for member, _ in joining}
        presence_join(room_id=self.room_id, members=members)
        present = presence_users(room_id=self.room_id)
        last_seq = room_last_seq(room_id=self.room_id)
        reads: dict[str, Any] = {}
        for member, then in joining:
            try:
                reads[member.connection_id] = then(last_seq)
            except Exception as error:
                reads[member.connection_id] = error
        return present, reads

    async def subscribed_once(self) -> None:
        if self.subscribed is None:
            self.subscribed = asyncio.ensure_future(self.subscribe())
        try:
            await asyncio.shield(self.subscribed)
        except Exception:
            # The next connection tries again (Redis may be back by then).
            self.subscribed = None
            raise
        if self.heartbeat is None:
            self.heartbeat = asyncio.create_task(self.beat())

    async def leave(self, member: Member) -> None:
        self.members.pop(member.connection_id, None)
        if self.unused():
            # Taken out at once, so that a new connection makes a new hub, not this closing one.
            _forget(self)
        self.leaving += 1
        try:
            await self.leaves.add(member.connection_id)
            self.mark({member.user_id})
        finally:
            self.leaving -= 1
        await self.close_when_done()

    async def watch(self, watcher: Member) -> None:
        """Count a connection to another room in: it hears of this room's new messages."""
        self.watchers[watcher.connection_id] = watcher
        try:
            await self.subscribed_once()
        except Exception:
            self.watchers.pop(watcher.connection_id, None)
            raise

    async def unwatch(self, watcher: Member) -> None:
        self.watchers.pop(watcher.connection_id, None)
        if self.unused():
            _forget(self)
        await self.close_when_done()

    def unused(self) -> bool:
        return not self.members and not self.watchers

    async def close_when_done(self) -> None:
        """Close the hub once it is unused and the last leave is recorded, once: when a
        whole room left at once (a reconnect storm), every leave found the hub unused and
        closed it, 2,000 group discards on as many new connections to Redis."""
        if self.unused() and not self.leaving and not self.closed:
            self.closed = True
            await self.close()

    async def close(self) -> None:
        """Tell the room who left, then stop listening to it."""
        flusher = self.flusher
        if flusher is not None:
            await asyncio.shield(flusher)
        for running in (
            self.heartbeat,
            self.receiver,
            self.gap_filler,
            self.typing_flusher,
            self.typing_forwarder,
        ):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        if self.channel:
            try:
                await self.layer.group_discard(self.group, self.channel)
                for job in list(self.following):
                    await self.unfollow(job)
            except Exception:
                logger.warning("room=%s hub channel not removed from its group", self.room_id)

    # The room's broadcasts.

    async def subscribe(self) -> None:
        """Join the room's group, then read where the room is: later messages come in order."""
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        last_seq: int = await connect_db(room_last_seq)(room_id=self.room_id)
        self.sequencer = Sequencer(last_seq)
        self.receiver = asyncio.create_task(self.receive())

    async def receive(self) -> None:
        retry = RETRY_FIRST
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:
                logger.warning(
                    "room=%s hub cannot receive; retrying in %.1f s", self.room_id, retry
                )
                await asyncio.sleep(retry)
                retry = min(RETRY_MAX, retry * 2)
                await self.resubscribe()
                continue
            retry = RETRY_FIRST
            try:
                if message["type"] == events.CHAT_BROADCAST:
                    await self.publish(message)
                elif message["type"] == events.CHAT_PRESENCE:
                    await self.send_all(json.dumps(message))
                elif message["type"] == events.CHAT_TYPING:
                    if message.get("hub") != self.channel:
                        for username in message.get("users", ()):
                            self.typing_add(username)
                elif message["type"] == events.CHAT_MEMBER_GONE:
                    for member in list(self.members.values()):
                        if member.user_id == message["user"]:
                            await member.dismiss()
                elif message["type"] in JOB_EVENTS:
                    await self.picture_progress(message)
            except Exception:
                logger.exception("room=%s hub failed on a %r", self.room_id, message["type"])

    async def resubscribe(self) -> None:
        """After the layer failed: join the group again (a restarted Redis forgot it) and read
        what was broadcast meanwhile. A failure is left to the next round."""
        try:
            await self.layer.group_add(self.group, self.channel)
            await self.read_missed(self.sequencer.cursor, None)
        except Exception:
            logger.warning("room=%s hub not back in its group yet", self.room_id)

    async def publish(self, broadcast: events.Broadcast) -> None:
        async with self.delivery:
            for message, reply_to in zip(broadcast["messages"], broadcast["reply_to"], strict=True):
                sender = self.members.get(reply_to) if reply_to else None
                if sender is not None and message["type"] == events.CHAT_MESSAGE:
                    # The sender's connection learns the seq before it gets the message.
                    ack = events.ack(
                        client_id=message["client_id"],  # type: ignore[typeddict-item]
                        message_id=message["id"],  # type: ignore[typeddict-item]
                        seq=message["seq"],
                    )
                    await sender.deliver(json.dumps(ack))
                await self.send_messages(self.sequencer.offer(message))
        if self.sequencer.gap() is not None and self.gap_filler is None:
            self.gap_filler = asyncio.create_task(self.fill_gap())

    async def fill_gap(self) -> None:
        """Wait for a missing message; if it does not come, read the gap from the database."""
        try:
            await asyncio.sleep(settings.CHAT["GAP_WAIT"])
            gap = self.sequencer.gap()
            if gap is not None:
                await self.read_missed(*gap)
        finally:
            self.gap_filler = None

    async def read_missed(self, after: int, upto: int | None) -> None:
        """Release the messages after seq `after` (up to `upto`) from the database, in order."""
        async with self.delivery:
            logger.info("room=%s reading seqs after %s from the database", self.room.pk, after)
            missed = await connect_db(messages_between)(
                room=self.room, after=after, upto=upto, limit=int(settings.CHAT["REPLAY_MAX"])
            )
            await self.send_messages(self.sequencer.fill(missed))

    async def send_messages(self, messages: list[events.Sequenced]) -> None:
        await self.follow_pictures(messages)
        for message in messages:
            if self.members:
                await self.send_all(json.dumps(message), message["seq"])
            if self.watchers and message["type"] == events.CHAT_MESSAGE:
                activity: events.ActivityPayload = {
                    "type": events.CHAT_ACTIVITY,
                    "room": self.room.name,
                    "seq": message["seq"],
                    "author": message["author"],  # type: ignore[typeddict-item]
                }
                await self.send_all(json.dumps(activity), members=self.watchers)

    async def send_all(
        self, text: str, seq: int | None = None, *, members: dict[str, Member] | None = None
    ) -> None:
        """Hand the text to every connection in the room (or to `members`)."""
        for n, member in enumerate(
            list((self.members if members is None else members).values()), 1
        ):
            if n % YIELD_EVERY == 0:
                # A send does not wait for the socket: without a pause, fanning a message out
                # to a thousand connections would hold up everything else on this loop,
                # including the next message coming in.
                await asyncio.sleep(0)
            try:
                await member.deliver(text, seq)
            except Exception:
                # One broken connection must not keep the others from their messages.
                logger.warning("room=%s delivery to %s failed", self.room_id, member.connection_id)

    # Pictures being processed.

    async def follow_pictures(self, messages: list[events.Sequenced]) -> None:
        """Follow the jobs of these messages' unfinished pictures (and stop following the
        finished ones'); a failure leaves the page without live progress, not its outcome."""
        for payload in messages:
            message: Any = payload.get("message", payload)
            picture: events.PicturePayload | None = message.get("picture")
            if not picture:
                continue
            for job in picture["jobs"]:
                try:
                    if picture["status"] not in PICTURE_UNFINISHED:
                        await self.unfollow(job)
                    elif job not in self.following:
                        await self.layer.group_add(job_events.job_group(job), self.channel)
                        self.following.add(job)
                except Exception:
                    logger.warning("room=%s job=%s progress not followed", self.room_id, job)

    async def unfollow(self, job: int) -> None:
        if job in self.following:
            self.following.discard(job)
            await self.layer.group_discard(job_events.job_group(job), self.channel)

    async def picture_progress(self, event: dict[str, Any]) -> None:
        """A job of a picture moved: tell the room's connections (not stored)."""
        job = event.get("job")
        if not isinstance(job, int) or job not in self.following:
            return
        progress: events.ProgressPayload = {
            "type": events.CHAT_PROGRESS,
            "upload": int(event.get("upload") or 0),
            "job": job,
            "task": str(event.get("task", "")),
            "status": str(event.get("status", "")),
            "progress": int(event.get("progress") or 0),
            "message": str(event.get("message", "")),
        }
        if event["type"] != job_events.JOB_PROGRESS:
            await self.unfollow(job)
        await self.send_all(json.dumps(progress))

    # Typing.

    def typed(self, username: str) -> None:
        """A connection of this process is typing: this hub's connections hear of it in their
        next batch, the room's other hubs in the next forward."""
        self.typing_add(username)
        self.typing_here.add(username)
        if self.typing_forwarder is None:
            self.typing_forwarder = asyncio.create_task(self.typing_forward())

    async def typing_forward(self) -> None:
        """Tell the room's other hubs who typed here, all of them in one layer message."""
        try:
            await asyncio.sleep(float(settings.CHAT["TYPING_BATCH"]))
            users, self.typing_here = sorted(self.typing_here), set()
            notice: events.Typing = {
                "type": events.CHAT_TYPING,
                "users": users,
                "hub": self.channel,
            }
            await self.layer.group_send(self.group, dict(notice))
        except Exception:
            # Typing is ephemeral: the next notice says it again.
            logger.warning("room=%s typing not forwarded", self.room_id, exc_info=True)
        finally:
            self.typing_forwarder = None

    def typing_add(self, username: Any) -> None:
        """Someone is typing: tell the room's connections in the next batch."""
        if not isinstance(username, str):
            return
        self.typing.add(username)
        if self.typing_flusher is None and self.members:
            self.typing_flusher = asyncio.create_task(self.typing_flush())

    async def typing_flush(self) -> None:
        try:
            await asyncio.sleep(notice_batch(connections=len(self.members), kind="TYPING"))
            users, self.typing = sorted(self.typing), set()
            notice: events.TypingPayload = {"type": events.CHAT_TYPING, "users": users}
            await self.send_all(json.dumps(notice))
        finally:
            self.typing_flusher = None

    # Presence.

    def mark(self, user_ids: set[int]) -> None:
        """These users may have come or gone: tell the room in the next batch."""
        self.changed |= user_ids
        if self.flusher is None:
            self.flusher = asyncio.create_task(self.flush_later())

    async def flush_later(self) -> None:
        await asyncio.sleep(notice_batch(connections=len(self.members), kind="PRESENCE"))
        changed, self.changed = self.changed, set()
        self.flusher = None
        try:
            joined, left, count = await connect_db(presence_changes)(
                room_id=self.room_id, user_ids=changed
            )
            update: events.PresencePayload = {"type": events.CHAT_PRESENCE, "count": count}
            if joined:
                update["joined"] = joined
            if left:
                update["left"] = left
            if joined or left:
                await self.layer.group_send(self.group, dict(update))
        except Exception:
            logger.warning("room=%s presence change not sent", self.room_id, exc_info=True)

    async def beat(self) -> None:
        interval: float = settings.CHAT["PRESENCE_HEARTBEAT"]
        while True:
            await asyncio.sleep(interval)
            try:
                members = {cid: m.user_id for cid, m in self.members.items()}
                restored = await connect_db(presence_touch)(room_id=self.room_id, members=members)
                gone = await connect_db(presence_prune)(room_id=self.room_id)
                # Group membership expires in channels-redis, and a restarted Redis forgets
                # it: renew it, or the room goes quiet for this process.
                await self.layer.group_add(self.group, self.channel)
            except Exception:
                logger.warning("room=%s hub heartbeat failed", self.room_id, exc_info=True)
                continue
            if restored or gone:
                self.mark(restored | gone)


# Hubs belong to the event loop their tasks run on.
_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, RoomHub]] = (
    weakref.WeakKeyDictionary()
)


def room_hub(room: Room, layer: Any) -> RoomHub:
    """This process's hub for the room, made for its first connection."""
    hubs = _hubs.setdefault(asyncio.get_running_loop(), {})
    hub = hubs.get(room.pk)
    if hub is None:
        hub = hubs[room.pk] = RoomHub(room, layer)
    return hub


def _forget(hub: RoomHub) -> None:
    hubs = _hubs.get(asyncio.get_running_loop(), {})
    if hubs.get(hub.room_id) is hub:
        del hubs[hub.room_id]
