"""The chat's rules: rooms and who may see them, what a message may be, posting, editing,
deleting, reactions, read markers, typing, mentions, rate limits, presence.

Public rooms are listed and anyone may join them (opening one joins it; a public room is made
on first use). Private rooms are seen by their members only: a non-member gets the same
answer as for a room that does not exist, on every path (page, socket, history, presence).

A message's life: `message_post` stores it with no sequence number and, in the same
transaction, queues the `message_publish` job on the `chat-messages` channel, whose worker
numbers and broadcasts it (chat/publishing.py). An edit, a delete or a reaction changes the
message at once and stores a `MessageEvent` that the same job numbers in the room's sequence
and broadcasts as a `chat.update`. Every action checks that its user is a member of the room.

A message may carry a picture: one of its author's uploads, accepted and processed by the
uploads app as any other (its checks, limits, quota and renditions). When the upload's
processing starts, is done or fails, `picture_moved` records that as a change of the message
(`MessageEvent.Action.PICTURE`), numbered and broadcast like an edit.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from chat import events
from chat.exceptions import (
    NO_SUCH_ROOM,
    InvalidFrame,
    InvalidMessage,
    InvalidRoomName,
    MessageNotFound,
    NotAllowed,
    PictureNotFound,
    RateLimited,
    RoomNotFound,
)
from chat.models import (
    ROOM_NAME_MAX_LENGTH,
    Membership,
    Message,
    MessageEvent,
    Presence,
    Reaction,
    ReadMarker,
    Room,
)
from chat.selectors import placeholders
from chat.tasks import message_publish
from media_tasks.models import Upload
from media_tasks.services import uploads_delete
from wire import ratelimit, sockets

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# The names of private rooms: this prefix and random letters (never made on first use).
PRIVATE_PREFIX = "private-"
PRIVATE_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
ROOM_NAME_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{ROOM_NAME_MAX_LENGTH}}}")
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# C0 controls other than tab, newline and carriage return: invisible, and PostgreSQL refuses NUL.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# `@name` not inside a word or an address; Django's usernames are letters, digits and @.+-_.
MENTION_RE = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")
# Mentions a message may notify: the rest are text.
MENTIONS_MAX = 20


def room_name_clean(name: Any) -> str:
    """The room name if it is allowed: letters, digits, `-` and `_`, 1 to 64 characters."""
    if not isinstance(name, str) or not ROOM_NAME_RE.fullmatch(name):
        shown = name[:80] if isinstance(name, str) else name
        raise InvalidRoomName(
            f"{shown!r} is not a room name: use letters, digits, - and _, "
            f"at most {ROOM_NAME_MAX_LENGTH} characters."
        )
    return name


def room_get_or_create(*, name: Any) -> Room:
    """The public room of that name, created on first use."""
    room, _ = Room.objects.get_or_create(name=room_name_clean(name))
    return room


def room_visible(*, name: Any, user: User) -> Room | None:
    """The room if the user may see it: public, or private with the user a member."""
    return Room.objects.visible_to(user.pk).filter(name=room_name_clean(name)).first()


# The rooms of these names (`{names}`), each with a row for each of these users (`{users}`)
# who is a member, or one row with no member: every connect reads it, written out (the ORM's
# building of a room and membership read cost 1.4 ms of the server's CPU more).
ROOMS_ENTER_SQL = """
    SELECT r.*, m.user_id AS member
    FROM chat_room r
    LEFT JOIN chat_membership m ON m.room_id = r.id AND m.user_id IN ({users})
    WHERE r.name IN ({names})
"""


def room_enter(*, name: Any, user: User) -> Room | None:
    """room_open for a room that exists, the user joining it if it is public; None for a
    public room's name that would make the room: count it against the user's limit
    (room_create_rate_check) before room_open makes it."""
    [outcome] = rooms_enter([(name, user)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def rooms_enter(entering: list[tuple[Any, User]]) -> list[Room | Exception | None]:
    """room_enter for each (name, user), in order, its outcome its own (the room, None, or
    the error room_enter raises); the rooms and the memberships are read in one statement
    for them all (a reconnect storm's connects are mostly these)."""
    names: list[str | Exception] = []
    for name, _ in entering:
        try:
            names.append(room_name_clean(name))
        except InvalidRoomName as error:
            names.append(error)
    wanted = list({name for name in names if isinstance(name, str)})
    users = list({user.pk for _, user in entering})
    rooms: dict[str, Room] = {}
    members: set[tuple[int, int]] = set()
    if wanted:
        read = ROOMS_ENTER_SQL.format(users=placeholders(users), names=placeholders(wanted))
        for row in Room.objects.raw(read, [*users, *wanted]):
            rooms.setdefault(row.name, row)
            if row.member is not None:  # type: ignore[attr-defined]
                members.add((row.pk, row.member))  # type: ignore[attr-defined]
    outcomes: list[Room | Exception | None] = []
    for (_, user), name in zip(entering, names, strict=True):
        if isinstance(name, Exception):
            outcomes.append(name)
        elif name not in rooms:
            private = name.startswith(PRIVATE_PREFIX)
            outcomes.append(RoomNotFound(NO_SUCH_ROOM) if private else None)
        elif (room := rooms[name]).is_private and (room.pk, user.pk) not in members:
            outcomes.append(RoomNotFound(NO_SUCH_ROOM))
        elif (room.pk, user.pk) in members:
            # Each connection its own instance, as each request has.
            outcomes.append(copy.copy(room))
        else:
            try:
                membership_add(room=room, user=user)
            except Exception as error:
                outcomes.append(error)
            else:
                outcomes.append(copy.copy(room))
    return outcomes


def room_open(*, name: Any, user: User) -> Room:
    """The room of that name for this user, who joins it if it is public (a public room is
    made on first use). A private room the user is not a member of is RoomNotFound, exactly
    as a room that does not exist."""
    room = room_enter(name=name, user=user)
    if room is None:
        room, _ = Room.objects.get_or_create(
            name=room_name_clean(name), defaults={"created_by": user}
        )
        if not room.is_private:
            membership_add(room=room, user=user)
    return room


def membership_add(*, room: Room, user: User, role: str = Membership.Role.MEMBER) -> Membership:
    """The user in the room; a new member has read what came before (nothing is unread)."""
    membership, created = Membership.objects.get_or_create(
        room=room, user=user, defaults={"role": role}
    )
    if created:
        ReadMarker.objects.get_or_create(room=room, user=user, defaults={"seq": room.last_seq})
    return membership


def room_create(*, creator: User, title: str = "", private: bool = False, name: Any = None) -> Room:
    """A new room with its creator as owner: a public one by the name given, a private one
    by a name made up for it."""
    title = title.strip()[:100]
    if private:
        name = PRIVATE_PREFIX + get_random_string(20, PRIVATE_NAME_CHARS)
    else:
        name = room_name_clean(name)
        if name.startswith(PRIVATE_PREFIX):
            raise InvalidRoomName(f"Names starting with {PRIVATE_PREFIX!r} are for private rooms.")
    with transaction.atomic():
        room, created = Room.objects.get_or_create(
            name=name, defaults={"title": title, "is_private": private, "created_by": creator}
        )
        if not created:
            raise InvalidRoomName(f"There is a room called {name!r} already.")
        membership_add(room=room, user=creator, role=Membership.Role.OWNER)
    return room


def _membership(room: Room, user: User) -> Membership:
    found = Membership.objects.filter(room=room, user=user).first()
    if found is None:
        raise RoomNotFound(NO_SUCH_ROOM)
    return found


def _member(room: Room, user: User) -> Membership:
    """The user's membership, checked on every action in a room: anyone may join a public
    room (as opening it does), while a non-member of a private one finds no room at all."""
    found = Membership.objects.filter(room=room, user=user).first()
    if found is not None:
        return found
    if room.is_private:
        raise RoomNotFound(NO_SUCH_ROOM)
    return membership_add(room=room, user=user)


def room_invite(*, room: Room, by: User, username: str) -> Membership:
    """A member brings another user into the room (the way into a private room)."""
    _membership(room, by)
    invited = get_user_model().objects.filter(username=username.strip()).first()
    if invited is None:
        raise NotAllowed(f"There is no user called {username.strip()[:150]!r}.")
    room.refresh_from_db(fields=["last_seq"])
    return membership_add(room=room, user=invited)


def room_leave(*, room: Room, user: User) -> None:
    """The user leaves the room; their open sockets to it close."""
    Membership.objects.filter(room=room, user=user).delete()
    room_sockets_close(room=room, user_id=user.pk)


def room_remove(*, room: Room, by: User, username: str) -> None:
    """The room's owner removes a member, whose open sockets to it close."""
    if _membership(room, by).role != Membership.Role.OWNER:
        raise NotAllowed("Only the room's owner may remove its members.")
    removed = Membership.objects.filter(
        room=room, user__username=username, role=Membership.Role.MEMBER
    ).select_related("user")
    for membership in removed:
        membership.delete()
        room_sockets_close(room=room, user_id=membership.user_id)


def room_rename(*, room: Room, by: User, title: str) -> Room:
    """The room's owner gives it another title (its address stays)."""
    if _membership(room, by).role != Membership.Role.OWNER:
        raise NotAllowed("Only the room's owner may rename it.")
    room.title = title.strip()[:100]
    room.save(update_fields=["title"])
    return room


RETENTION_MAX_DAYS = 3650


def room_retention_set(*, room: Room, by: User, days: Any) -> Room:
    """The room's owner has messages older than `days` deleted (None or "": kept for ever)."""
    if _membership(room, by).role != Membership.Role.OWNER:
        raise NotAllowed("Only the room's owner may set how long its messages are kept.")
    if days in (None, ""):
        room.retention_days = None
    else:
        try:
            number = int(days)
        except (TypeError, ValueError):
            number = 0
        if not 1 <= number <= RETENTION_MAX_DAYS:
            raise InvalidMessage(
                f"Keep messages for 1 to {RETENTION_MAX_DAYS} days, or leave it empty for ever."
            )
        room.retention_days = number
    room.save(update_fields=["retention_days"])
    return room


def room_sockets_close(*, room: Room, user_id: int) -> None:
    """Close the user's open sockets to the room, in every server (through the room's
    hubs), once the caller's transaction commits."""
    message: events.MemberGone = {"type": events.CHAT_MEMBER_GONE, "user": user_id}
    layer = get_channel_layer()
    transaction.on_commit(
        lambda: async_to_sync(layer.group_send)(events.room_group(room.pk), dict(message)),
        robust=True,
    )


@dataclass(frozen=True, slots=True)
class CleanMessage:
    body: str
    client_id: str


def message_clean(*, body: Any, client_id: Any = None, empty_ok: bool = False) -> CleanMessage:
    """Check a message as a user sent it; the body is trimmed, a missing client_id made up.
    `empty_ok`: the message has a picture, its text may be left out."""
    limit = int(settings.CHAT["BODY_MAX_CHARS"])
    if body is None and empty_ok:
        body = ""
    if not isinstance(body, str):
        raise InvalidMessage("The message needs a body: a string of text.")
    body = body.strip()
    if not body and not empty_ok:
        raise InvalidMessage("The message is empty.")
    if len(body) > limit:
        raise InvalidMessage(f"The message is {len(body)} characters long; the limit is {limit}.")
    if CONTROL_RE.search(body):
        raise InvalidMessage("The message contains control characters.")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\ud800" in JSON) decodes to a str that no database can store.
        raise InvalidMessage("The message is not valid Unicode text.") from None
    if client_id is None:
        client_id = uuid.uuid4().hex
    elif not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
        raise InvalidMessage(
            "client_id must be 1 to 64 letters, digits or any of - _ . : (or be left out)."
        )
    return CleanMessage(body=body, client_id=client_id)


@dataclass(frozen=True, slots=True)
class PostResult:
    message: Message
    # False when this client_id was posted before: the first message stands, nothing is added.
    created: bool


def message_post(
    *,
    room: Room,
    author: User,
    body: Any,
    client_id: Any = None,
    reply_to: str = "",
    picture: Any = None,
) -> PostResult:
    """Store an accepted message and queue its publishing in one transaction; `picture`, the
    id of one of the author's uploads, goes with it (the body may then be empty).

    A retry with the same client_id returns the first message; if that one is still waiting
    for its number, its acknowledgement now goes to `reply_to` (the retrying connection).
    """
    clean = message_clean(body=body, client_id=client_id, empty_ok=picture is not None)
    _member(room, author)
    upload = None if picture is None else _picture_of(author, picture, client_id=clean.client_id)
    try:
        with transaction.atomic():
            message = Message.objects.create(
                room=room,
                author=author,
                body=clean.body,
                client_id=clean.client_id,
                reply_to=reply_to,
                mentions=mentions_in(room=room, body=clean.body, author=author),
                picture=upload,
                picture_status=upload.status if upload is not None else "",
            )
            message_publish.enqueue(room.pk)
    except IntegrityError:
        message = Message.objects.select_related("room", "author").get(
            room=room, author=author, client_id=clean.client_id
        )
        if message.seq is None and reply_to:
            Message.objects.filter(pk=message.pk, seq__isnull=True).update(reply_to=reply_to)
        return PostResult(message=message, created=False)
    return PostResult(message=message, created=True)


def _picture_of(author: User, upload_id: Any, *, client_id: str) -> Upload:
    """The author's upload of that id, if no other message has it (but this client_id's own:
    a retry, where the first message stands)."""
    if isinstance(upload_id, bool) or not isinstance(upload_id, int):
        raise InvalidFrame("'upload' must be the id of one of your uploads (POST /api/uploads/).")
    upload = (
        Upload.objects.filter(owner=author, pk=upload_id)
        .select_related("thumbnails_job", "analysis_job")
        .first()
    )
    if upload is None:
        raise PictureNotFound(f"You have no upload {upload_id}.")
    sent = Message.objects.filter(picture=upload).values_list("client_id", flat=True).first()
    if sent is not None and sent != client_id:
        raise NotAllowed(f"Your upload {upload_id} is in a message already.")
    return upload


def picture_moved(*, upload_id: int) -> None:
    """A job of the upload started or finished: if that changed its status, record it as a
    change of the message whose picture it is (numbered and broadcast like an edit)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .filter(picture_id=upload_id, deleted_at__isnull=True)
            .select_related("author", "picture__thumbnails_job", "picture__analysis_job")
            .first()
        )
        if message is None or message.picture is None:
            return
        status = message.picture.status
        if status == message.picture_status:
            return
        message.picture_status = status
        message.save(update_fields=["picture_status"])
        _event_record(message=message, actor=message.author, action=MessageEvent.Action.PICTURE)


def mentions_in(*, room: Room, body: str, author: User) -> list[str]:
    """The members of the room (other than the author) that the body mentions, in order."""
    if "@" not in body:
        return []
    wanted: list[str] = []
    for match in MENTION_RE.finditer(body):
        name = match.group(1).rstrip(".")
        if name and name not in wanted:
            wanted.append(name)
    wanted = wanted[:MENTIONS_MAX]
    members = set(
        Membership.objects.filter(room=room, user__username__in=wanted)
        .exclude(user=author)
        .values_list("user__username", flat=True)
    )
    return [name for name in wanted if name in members]


def _message_of(room: Room, message_id: Any) -> Message:
    """The room's sequenced message of that id; another room's is not found, as none is."""
    if isinstance(message_id, bool) or not isinstance(message_id, int):
        raise InvalidFrame("'message' must be the id of a message of this room.")
    found = (
        Message.objects.filter(room=room, pk=message_id)
        .sequenced()
        .select_related("author")
        .first()
    )
    if found is None:
        raise MessageNotFound(f"There is no message {message_id} in this room.")
    return found


def _event_record(*, message: Message, actor: User, action: str, previous_body: str = "") -> None:
    """Store the change for numbering, and queue the job that numbers and broadcasts it."""
    MessageEvent.objects.create(
        room_id=message.room_id,
        message=message,
        actor=actor,
        action=action,
        previous_body=previous_body,
    )
    message_publish.enqueue(message.room_id)


def message_edit(*, room: Room, user: User, message_id: Any, body: Any) -> Message:
    """The author changes a message's text; the earlier text is kept, the message is marked
    edited with the time."""
    _member(room, user)
    clean = message_clean(body=body)
    with transaction.atomic():
        message = _message_of(room, message_id)
        message = Message.objects.select_for_update().select_related("author").get(pk=message.pk)
        if message.author_id != user.pk:
            raise NotAllowed("Only its author may edit a message.")
        if message.deleted_at is not None:
            raise NotAllowed("This message was deleted; it cannot be edited.")
        if clean.body == message.body:
            return message
        previous = message.body
        message.body = clean.body
        message.edited_at = timezone.now()
        message.mentions = mentions_in(room=room, body=clean.body, author=user)
        message.save(update_fields=["body", "edited_at", "mentions"])
        _event_record(
            message=message, actor=user, action=MessageEvent.Action.EDIT, previous_body=previous
        )
    return message


def message_delete(*, room: Room, user: User, message_id: Any) -> Message:
    """The author, or the room's owner, deletes a message: a tombstone stays in its place;
    its text is kept for them."""
    membership = _member(room, user)
    with transaction.atomic():
        message = _message_of(room, message_id)
        message = Message.objects.select_for_update().select_related("author").get(pk=message.pk)
        if message.author_id != user.pk and membership.role != Membership.Role.OWNER:
            raise NotAllowed("Only its author or the room's owner may delete a message.")
        if message.deleted_at is not None:
            return message
        previous = message.body
        picture = message.picture_id
        message.body = ""
        message.mentions = []
        message.deleted_at = timezone.now()
        message.picture = None
        message.save(update_fields=["body", "mentions", "deleted_at", "picture"])
        message.reactions.all().delete()
        uploads_delete(upload_ids=[picture] if picture is not None else [])
        _event_record(
            message=message, actor=user, action=MessageEvent.Action.DELETE, previous_body=previous
        )
    return message


def reaction_set(*, room: Room, user: User, message_id: Any, emoji: Any, on: Any) -> bool:
    """Add (`on`) or take back the user's emoji on a message; whether anything changed."""
    _member(room, user)
    if not isinstance(emoji, str) or emoji not in events.REACTIONS:
        raise InvalidFrame(f"'emoji' must be one of {' '.join(events.REACTIONS)}.")
    if not isinstance(on, bool):
        raise InvalidFrame("'on' must be true (add the reaction) or false (take it back).")
    with transaction.atomic():
        message = _message_of(room, message_id)
        if message.deleted_at is not None:
            raise NotAllowed("This message was deleted; it takes no reactions.")
        if on:
            _, changed = Reaction.objects.get_or_create(message=message, user=user, emoji=emoji)
        else:
            deleted, _ = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
            changed = bool(deleted)
        if changed:
            _event_record(message=message, actor=user, action=MessageEvent.Action.REACTION)
    return changed


def revisions_allowed(*, room: Room, user: User, message_id: Any) -> Message:
    """The message if the user may read its earlier texts: its author, or the room's owner."""
    membership = _member(room, user)
    message = _message_of(room, message_id)
    if message.author_id != user.pk and membership.role != Membership.Role.OWNER:
        raise NotAllowed("Only its author or the room's owner may see a message's earlier texts.")
    return message


def read_mark(*, room: Room, user: User, seq: Any) -> int | None:
    """The user has read the room up to `seq` (never moves back; at most the room's last
    seq). Returns the new marker, or None when it did not move."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidFrame("'seq' must be the seq of the last message you have read.")
    _member(room, user)
    last_seq: int = Room.objects.values_list("last_seq", flat=True).get(pk=room.pk)
    upto = min(int(seq), last_seq)
    moved = ReadMarker.objects.filter(room=room, user=user, seq__lt=upto).update(seq=upto)
    if not moved:
        _, created = ReadMarker.objects.get_or_create(room=room, user=user, defaults={"seq": upto})
        if not created:
            return None
    return upto


def read_notify(*, room: Room, user: User, seq: int, unread: int) -> None:
    """Tell the user's other sockets that the room was read up to `seq`."""
    message: events.ReadPayload = {
        "type": events.CHAT_READ,
        "user": user.pk,
        "room": room.name,
        "seq": seq,
        "unread": unread,
    }
    async_to_sync(get_channel_layer().group_send)(sockets.user_group(user.pk), dict(message))


def typing_due(*, last_sent: float, now: float) -> bool:
    """Whether a connection's typing notice goes out: one per TYPING_INTERVAL, the rest are
    dropped without an answer (a notice is not worth an error, and a user has few sockets)."""
    return now - last_sent >= float(settings.CHAT["TYPING_INTERVAL"])


def notice_batch(*, connections: int, kind: str) -> float:
    """How long a room's hub gathers notices of one kind ("PRESENCE": who came or left,
    "TYPING": who is typing) before it sends them to its `connections`: the kind's _BATCH,
    longer in a big room so that it sends at most NOTICE_SENDS frames of the kind a second in
    all (the room's messages come first), never longer than its _BATCH_MAX."""
    options = settings.CHAT
    spread = connections / float(options["NOTICE_SENDS"])
    least, most = float(options[f"{kind}_BATCH"]), float(options[f"{kind}_BATCH_MAX"])
    return min(most, max(least, spread))


async def message_rate_check(*, user_id: int) -> None:
    """Count one message (or edit, delete, reaction: each takes a seq) against the user's
    limit; RateLimited once it is used up."""
    options = settings.CHAT
    await _rate_check(
        f"chat:rate:{user_id}", options["RATE_LIMIT"], options["RATE_WINDOW"], "messages"
    )


async def history_rate_check(*, user_id: int) -> None:
    """Count one page of older history against the user's limit."""
    options = settings.CHAT
    await _rate_check(
        f"chat:history:{user_id}",
        options["HISTORY_RATE"],
        options["HISTORY_WINDOW"],
        "pages of history",
    )


async def read_rate_check(*, user_id: int) -> None:
    """Count one read marker against the user's limit."""
    options = settings.CHAT
    await _rate_check(
        f"chat:read:{user_id}", options["READ_RATE"], options["RATE_WINDOW"], "read markers"
    )


async def room_create_rate_check(*, user_id: int) -> None:
    """Count one new room against the user's limit."""
    await _rate_check(f"chat:rooms:{user_id}", settings.CHAT["ROOMS_PER_HOUR"], 3600, "new rooms")


async def _rate_check(key: str, limit: float, window: float, what: str) -> None:
    retry_after = await ratelimit.hit(key, limit=int(limit), window=window)
    if retry_after is not None:
        raise RateLimited(
            f"Slow down: at most {limit:g} {what} per {window:g} s. "
            f"Try again in {retry_after:.0f} s.",
            retry_after=retry_after,
        )


@contextmanager
def fleeting_commit() -> Iterator[None]:
    """A transaction whose commit does not wait for PostgreSQL's disk: for presence rows,
    which say who is connected now and which the servers restore by themselves
    (presence_touch) if a crash of PostgreSQL loses the last of them. Each connect and each
    disconnect would otherwise wait for a WAL flush, one after another on the server's one
    database thread: the bound of a reconnect storm. Never around anything else."""
    with transaction.atomic():
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


# Presence rows written as fleeting_commit writes them, each in a statement on its own: run
# outside a transaction, one trip to the database, not four (BEGIN, SET LOCAL, the statement,
# COMMIT); set_config(..., true) holds for the statement's own transaction. The table is
# Presence's (tests/chat/test_services.py checks that both ways write the same row).
PRESENCE_JOIN_SQL = """
    WITH fleeting AS (SELECT set_config('synchronous_commit', 'off', true))
    INSERT INTO chat_presence (room_id, user_id, connection_id, seen_at)
    SELECT %s, joining.user_id, joining.connection_id, %s
    FROM fleeting, unnest(%s::bigint[], %s::text[]) AS joining (user_id, connection_id)
    ON CONFLICT (connection_id) DO UPDATE
    SET room_id = EXCLUDED.room_id, user_id = EXCLUDED.user_id, seen_at = EXCLUDED.seen_at
"""
PRESENCE_LEAVE_SQL = """
    WITH fleeting AS (SELECT set_config('synchronous_commit', 'off', true))
    DELETE FROM chat_presence USING fleeting WHERE connection_id = ANY(%s)
"""


def _fleeting_statement() -> bool:
    """Whether presence may be written in one fleeting statement (PostgreSQL, and not inside
    a transaction, whose own commit the setting would change)."""
    connection = transaction.get_connection()
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def presence_join(*, room_id: int, members: dict[str, int]) -> None:
    """Record connections to the room (by connection id, with their users), in one
    statement; each counts as present until left or expired."""
    now = timezone.now()
    if _fleeting_statement():
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(PRESENCE_JOIN_SQL, [room_id, now, list(members.values()), list(members)])
        return
    rows = [
        Presence(room_id=room_id, user_id=user_id, connection_id=connection_id, seen_at=now)
        for connection_id, user_id in members.items()
    ]
    with fleeting_commit():
        Presence.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["connection_id"],
            update_fields=["room", "user", "seen_at"],
        )


def presence_leave(*, connection_ids: list[str]) -> None:
    """Forget these connections (closed), in one statement."""
    if _fleeting_statement():
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(PRESENCE_LEAVE_SQL, [connection_ids])
        return
    with fleeting_commit():
        Presence.objects.filter(connection_id__in=connection_ids).delete()


def presence_touch(*, room_id: int, members: dict[str, int]) -> set[int]:
    """Keep this server's connections alive; returns users whose rows had to be restored
    (another server pruned them while this one could not reach the database)."""
    now = timezone.now()
    touched = set(
        Presence.objects.filter(connection_id__in=list(members)).values_list(
            "connection_id", flat=True
        )
    )
    Presence.objects.filter(connection_id__in=touched).update(seen_at=now)
    missing = {key: user_id for key, user_id in members.items() if key not in touched}
    if missing:
        presence_join(room_id=room_id, members=missing)
    return set(missing.values())


def presence_prune(*, room_id: int) -> set[int]:
    """Drop the room's connections whose server stopped touching them; returns the users who
    are gone with them (no live connection left)."""
    ttl: float = settings.CHAT["PRESENCE_TTL"]
    pruned: set[int] = set()
    for pk, user_id in (
        Presence.objects.filter(room_id=room_id).expired(ttl=ttl).values_list("pk", "user_id")
    ):
        # Conditional, so that of several servers pruning at once only one reports the user.
        deleted, _ = Presence.objects.filter(pk=pk).expired(ttl=ttl).delete()
        if deleted:
            pruned.add(user_id)
    still_here = Presence.objects.filter(room_id=room_id, user_id__in=pruned).live(ttl=ttl)
    return pruned - set(still_here.values_list("user_id", flat=True))
