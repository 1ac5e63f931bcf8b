"""Read-only questions about rooms, messages and presence, answered as JSON-safe payloads."""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Count, F, Field, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse

from chat import events
from chat.models import (
    Membership,
    Message,
    MessageEvent,
    Presence,
    PresenceQuerySet,
    Reaction,
    ReadMarker,
    Room,
    presence_cutoff,
)
from media_tasks.models import Rendition, Upload

# Messages per history frame of a replay: a long absence arrives in several bounded frames.
REPLAY_FRAME = 100
# Names listed per emoji of a message (the count is always whole).
REACTION_NAMES = 20

Reactions = dict[int, list[events.ReactionCount]]
# Pictures by upload id.
Pictures = dict[int, events.PicturePayload]


def reactions_of(message_ids: Iterable[int]) -> Reactions:
    """The reactions of these messages, by message id: each emoji with its count and first
    names, in the order of the fixed set."""
    found: dict[int, dict[str, list[str]]] = defaultdict(dict)
    rows = (
        Reaction.objects.filter(message_id__in=list(message_ids))
        .order_by("message_id", "id")
        .values_list("message_id", "emoji", "user__username")
    )
    for message_id, emoji, username in rows:
        found[message_id].setdefault(emoji, []).append(username)
    order = {emoji: n for n, emoji in enumerate(events.REACTIONS)}
    return {
        message_id: [
            {"emoji": emoji, "count": len(names), "users": names[:REACTION_NAMES]}
            for emoji, names in sorted(by_emoji.items(), key=lambda item: order.get(item[0], 99))
        ]
        for message_id, by_emoji in found.items()
    }


def pictures_of(upload_ids: Iterable[int | None], *, room: Room) -> Pictures:
    """The pictures of these uploads as the room shows them, by upload id (two queries)."""
    wanted = [pk for pk in upload_ids if pk is not None]
    if not wanted:
        return {}
    uploads = (
        Upload.objects.filter(pk__in=wanted)
        .select_related("thumbnails_job", "analysis_job")
        .prefetch_related("renditions")
    )
    return {upload.pk: picture_payload(upload, room=room) for upload in uploads}


def picture_payload(upload: Upload, *, room: Room) -> events.PicturePayload:
    """An upload as a message's picture: its status, placeholder and renditions, each by the
    room's members-only URL."""
    # The smallest first, each size's formats in the settings' order (best first).
    formats: dict[int, list[str]] = settings.THUMBNAIL_FORMATS

    def rank(rendition: Rendition) -> tuple[int, int]:
        best = formats.get(rendition.size, [])
        return rendition.size, best.index(rendition.format) if rendition.format in best else 99

    renditions = sorted(upload.renditions.all(), key=rank)

    def url(rendition: Rendition) -> str:
        return reverse("chat:picture", args=[room.name, upload.pk, rendition.name])

    return {
        "upload": upload.pk,
        "status": upload.status,
        "progress": upload.progress,
        "error": upload.error,
        "width": upload.width,
        "height": upload.height,
        "thumbhash": upload.thumbhash,
        "thumbnail": url(renditions[0]) if renditions else "",
        "renditions": [
            {
                "name": r.name,
                "width": r.width,
                "height": r.height,
                "format": r.format,
                "url": url(r),
            }
            for r in renditions
        ],
        "jobs": [job.pk for job in upload.jobs()],
    }


def message_payload(
    message: Message,
    *,
    room: Room | None = None,
    reactions: Reactions | None = None,
    pictures: Pictures | None = None,
) -> events.MessagePayload:
    """The message as every client sees it (`room` saves a query when the caller has it,
    `reactions` and `pictures` some per message)."""
    room = room or message.room
    if reactions is None:
        reactions = reactions_of([message.pk])
    if pictures is None:
        pictures = pictures_of([message.picture_id], room=room)
    return {
        "type": events.CHAT_MESSAGE,
        "id": message.pk,
        "seq": int(message.seq or 0),
        "room": room.name,
        "author": message.author.get_username(),
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "client_id": message.client_id,
        "mentions": list(message.mentions or []),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "deleted": message.deleted_at is not None,
        "reactions": reactions.get(message.pk, []),
        "picture": pictures.get(message.picture_id) if message.picture_id else None,
    }


def update_payload(
    event: MessageEvent,
    *,
    room: Room,
    reactions: Reactions | None = None,
    pictures: Pictures | None = None,
) -> events.UpdatePayload:
    """A change to a message, with the message as it is now."""
    return {
        "type": events.CHAT_UPDATE,
        "seq": int(event.seq or 0),
        "room": room.name,
        "action": event.action,
        "by": event.actor.get_username(),
        "message": message_payload(
            event.message, room=room, reactions=reactions, pictures=pictures
        ),
    }


def sequenced_payloads(
    messages: list[Message], updates: list[MessageEvent], *, room: Room
) -> list[events.Sequenced]:
    """Messages and updates as one list in seq order, their reactions and pictures read in a
    few queries."""
    reactions = reactions_of({m.pk for m in messages} | {e.message_id for e in updates})
    pictures = pictures_of(
        {m.picture_id for m in messages} | {e.message.picture_id for e in updates}, room=room
    )
    payloads: list[events.Sequenced] = [
        message_payload(m, room=room, reactions=reactions, pictures=pictures) for m in messages
    ]
    payloads += [
        update_payload(e, room=room, reactions=reactions, pictures=pictures) for e in updates
    ]
    payloads.sort(key=lambda payload: payload["seq"])
    return payloads


def ack_payload(message: Message) -> events.AckPayload:
    return events.ack(client_id=message.client_id, message_id=message.pk, seq=message.seq)


def _payloads(messages: Any, room: Room) -> list[events.MessagePayload]:
    messages = list(messages)
    reactions = reactions_of(m.pk for m in messages)
    pictures = pictures_of((m.picture_id for m in messages), room=room)
    return [message_payload(m, room=room, reactions=reactions, pictures=pictures) for m in messages]


def _sequenced(room: Room) -> Any:
    return Message.objects.filter(room=room).sequenced().select_related("author")


def _sequenced_updates(room: Room) -> Any:
    return MessageEvent.objects.filter(room=room, seq__isnull=False).select_related(
        "actor", "message__author"
    )


def messages_latest(*, room: Room, limit: int | None = None) -> events.HistoryPayload:
    """The room's latest messages, oldest first."""
    limit = limit or int(settings.CHAT["HISTORY_SIZE"])
    messages = list(_sequenced(room).order_by("-seq")[:limit])[::-1]
    return {
        "type": events.CHAT_HISTORY,
        "messages": _payloads(messages, room),
        # Sequence numbers have no holes: anything before seq 1 means more to page in.
        "has_more": bool(messages) and messages[0].seq != 1,
    }


def messages_before(*, room: Room, before: int, limit: int | None = None) -> events.HistoryPayload:
    """A page of the messages just before seq `before`, oldest first (scrolling back)."""
    limit = limit or int(settings.CHAT["HISTORY_SIZE"])
    messages = list(_sequenced(room).filter(seq__lt=before).order_by("-seq")[:limit])[::-1]
    return {
        "type": events.CHAT_HISTORY,
        "messages": _payloads(messages, room),
        "has_more": bool(messages) and messages[0].seq != 1,
        "before": before,
    }


def messages_between(
    *, room: Room, after: int, upto: int | None = None, limit: int | None = None
) -> list[events.Sequenced]:
    """The first `limit` messages and updates with after < seq <= upto (or all after), in
    order."""
    messages = _sequenced(room).filter(seq__gt=after).order_by("seq")
    updates = _sequenced_updates(room).filter(seq__gt=after).order_by("seq")
    if upto is not None:
        messages = messages.filter(seq__lte=upto)
        updates = updates.filter(seq__lte=upto)
    # The first `limit` of both together are among the first `limit` of each.
    merged = sequenced_payloads(list(messages[:limit]), list(updates[:limit]), room=room)
    return merged[:limit]


# Search results per page, and the messages shown either side of one in context.
SEARCH_RESULTS = 30
CONTEXT_AROUND = 10


def messages_search(*, room: Room, query: str, limit: int = SEARCH_RESULTS) -> list[Message]:
    """The room's messages that match the words of `query`, newest first: PostgreSQL's full
    text search (websearch syntax: "quoted phrases", -excluded words); elsewhere, messages
    containing every word."""
    query = query.strip()[:200]
    if not query:
        return []
    found = _sequenced(room).filter(deleted_at__isnull=True)
    if connection.vendor == "postgresql":
        # The same expression as the index chat_message_search (migration 0004).
        vector = SearchVector("body", config="simple")
        found = found.annotate(search=vector).filter(
            search=SearchQuery(query, config="simple", search_type="websearch")
        )
    else:
        for word in query.split()[:10]:
            found = found.filter(body__icontains=word)
    return list(found.order_by("-seq")[:limit])


def messages_around(*, room: Room, seq: int) -> list[Message]:
    """The message of `seq` with the CONTEXT_AROUND messages either side, in order."""
    before = list(_sequenced(room).filter(seq__lt=seq).order_by("-seq")[:CONTEXT_AROUND])
    rest = list(_sequenced(room).filter(seq__gte=seq).order_by("seq")[: CONTEXT_AROUND + 1])
    return before[::-1] + rest


def room_last_seq(*, room_id: int) -> int:
    """The room's highest seq so far (0 before its first message)."""
    # Every connect reads it (and every gap a hub fills): written out, the ORM's building of
    # it cost 0.27 ms of the server's CPU more.
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_seq FROM chat_room WHERE id = %s", [room_id])
        row = cursor.fetchone()
    if row is None:
        raise Room.DoesNotExist(f"no room {room_id}")
    return int(row[0])


@dataclass(frozen=True, slots=True)
class Replay:
    """What a connection sends first, and the seq its client has seen once it is sent."""

    frames: list[events.HistoryPayload]
    cursor: int


def history_on_connect(*, room: Room, since: int | None, last_seq: int | None = None) -> Replay:
    """The latest messages; or, after a reconnect, exactly those after seq `since`.

    More missed than REPLAY_MAX, or a `since` beyond the room's last message (a client from
    before a reset), gets the latest messages with `reset`, so the page starts over.
    `last_seq`: the room's, read after the connection joined its hub (RoomHub.join), else
    read here.
    """
    # Read first: whatever is numbered after it reaches the connection live (held until this
    # is sent), and whatever is numbered before it is in what is read below.
    if last_seq is None:
        last_seq = room_last_seq(room_id=room.pk)
    if since is not None:
        limit = int(settings.CHAT["REPLAY_MAX"])
        # Caught up (most of a reconnect storm after a deploy): nothing more to read.
        missed = (
            [] if since == last_seq else messages_between(room=room, after=since, limit=limit + 1)
        )
        if len(missed) <= limit and since <= last_seq:
            frames: list[events.HistoryPayload] = []
            for start in range(0, max(len(missed), 1), REPLAY_FRAME):
                page = missed[start : start + REPLAY_FRAME]
                first = page[0]["seq"] if page else since + 1
                frame: events.HistoryPayload = {
                    "type": events.CHAT_HISTORY,
                    "messages": [p for p in page if p["type"] == events.CHAT_MESSAGE],  # type: ignore[misc]
                    "has_more": first > 1,
                }
                updates = [p for p in page if p["type"] == events.CHAT_UPDATE]
                if updates:
                    frame["updates"] = updates  # type: ignore[typeddict-item]
                frames.append(frame)
            cursor = max(missed[-1]["seq"] if missed else since, since)
            return Replay(frames=frames, cursor=cursor)
    latest = messages_latest(room=room)
    if since is not None:
        latest["reset"] = True
    newest = latest["messages"][-1]["seq"] if latest["messages"] else 0
    return Replay(frames=[latest], cursor=max(last_seq, newest))


def rooms_active(*, limit: int = 50) -> list[Room]:
    """Public rooms with recent messages, the most recently active first."""
    return list(Room.objects.public().active()[:limit])


def rooms_of(*, user_id: int) -> list[Room]:
    """The rooms the user is a member of, the most recently active first."""
    [rooms] = rooms_of_each([user_id])
    return rooms


def placeholders(values: list[Any]) -> str:
    """A written-out statement's placeholders for these values, one each."""
    return ", ".join(["%s"] * len(values))


def rooms_of_each(user_ids: list[int]) -> list[list[Room]]:
    """rooms_of for each of these users, in order, in one statement (the connects of a
    reconnect storm arriving together); each list its own instances."""
    wanted = list(set(user_ids))
    read = ROOMS_OF_SQL.format(placeholders(wanted))
    found: dict[int, list[Room]] = {user_id: [] for user_id in wanted}
    for room in Room.objects.raw(read, wanted):
        found[room.member_id].append(room)  # type: ignore[attr-defined]
    handed: set[int] = set()
    each = []
    for user_id in user_ids:
        rooms = found[user_id]
        each.append([copy.copy(room) for room in rooms] if user_id in handed else rooms)
        handed.add(user_id)
    return each


# Every connect reads it (the other rooms a page counts unread messages of): written out, as
# the ORM would write it, since the ORM's building of it cost 0.5 ms of the server's CPU more;
# for the users in place of `{}`.
ROOMS_OF_SQL = """
    SELECT r.*, m.user_id AS member_id FROM chat_room r
    INNER JOIN chat_membership m ON m.room_id = r.id
    WHERE m.user_id IN ({})
    ORDER BY r.last_message_at DESC NULLS LAST, r.name
"""


def rooms_with_unread(*, user_id: int) -> list[Room]:
    """The user's rooms, the most recently active first, each with `unread`: the messages of
    others after the user's read marker (deleted ones not counted)."""
    marker = ReadMarker.objects.filter(room=OuterRef("pk"), user_id=user_id).values("seq")[:1]
    read_upto = Coalesce(Subquery(marker), Value(0), output_field=IntegerField())
    return list(
        Room.objects.filter(memberships__user_id=user_id)
        .annotate(
            unread=Count(
                "messages",
                filter=Q(messages__seq__gt=read_upto, messages__deleted_at__isnull=True)
                & ~Q(messages__author_id=user_id),
            )
        )
        .order_by(F("last_message_at").desc(nulls_last=True), "name")
    )


def unread_count(*, room: Room, user_id: int) -> int:
    """The messages of others in the room after the user's read marker."""
    read_upto = ReadMarker.objects.filter(room=room, user_id=user_id).values_list("seq", flat=True)
    return (
        Message.objects.filter(room=room, seq__gt=Coalesce(Subquery(read_upto[:1]), Value(0)))
        .filter(deleted_at__isnull=True)
        .exclude(author_id=user_id)
        .count()
    )


def read_seq(*, room: Room, user_id: int) -> int:
    """How far the user has read the room (0: nothing yet)."""
    found = ReadMarker.objects.filter(room=room, user_id=user_id).values_list("seq", flat=True)
    return int(found.first() or 0)


def revisions_of(*, message: Message) -> list[events.Revision]:
    """The earlier texts of a message, oldest first (for its author and the room's owner)."""
    return [
        {"body": body, "replaced_at": created_at.isoformat(), "action": action}
        for body, created_at, action in message.events.filter(
            action__in=[MessageEvent.Action.EDIT, MessageEvent.Action.DELETE]
        )
        .order_by("id")
        .values_list("previous_body", "created_at", "action")
    ]


def picture_in(*, room: Room, upload_id: int, name: str) -> Rendition | None:
    """The rendition `name` of a picture of the room's messages (deleted ones have none)."""
    return (
        Rendition.objects.filter(
            upload_id=upload_id,
            name=name,
            upload__chat_message__room=room,
            upload__chat_message__deleted_at__isnull=True,
        )
        .select_related("upload")
        .first()
    )


def is_owner(*, room: Room, user_id: int) -> bool:
    return Membership.objects.filter(
        room=room, user_id=user_id, role=Membership.Role.OWNER
    ).exists()


def room_members(*, room: Room) -> list[dict[str, str]]:
    """Who belongs to the room, by name, with their role (for its members only)."""
    return [
        {"username": username, "role": role}
        for username, role in room.memberships.order_by("user__username").values_list(
            "user__username", "role"
        )
    ]


@dataclass(frozen=True, slots=True)
class Present:
    """Who is in a room: the first names (`limit`, PRESENCE_LIST, at most, sorted) and how
    many."""

    names: list[str]
    count: int
    limit: int


def presence_users(*, room_id: int) -> Present:
    """The users with a live connection to the room: the first PRESENCE_LIST names, sorted
    (a connect to a room of thousands reads and sends a page of them, not all), and how many
    there are, in one statement (PRESENCE_USERS_SQL)."""
    cutoff = presence_cutoff(ttl=settings.CHAT["PRESENCE_TTL"])
    limit = int(settings.CHAT["PRESENCE_LIST"])
    with connection.cursor() as cursor:
        cursor.execute(presence_users_sql(), {"room": room_id, "cutoff": cutoff, "limit": limit})
        rows = cursor.fetchall()
    return Present(names=[name for name, _ in rows], count=rows[0][1] if rows else 0, limit=limit)


# Every connect reads it: written out, as the ORM would write it, since the ORM's building of
# it cost 2.1 ms of the server's CPU a connect (0.4 ms so), the most of any of a connect's
# statements. The count is a subquery the database runs once, not a window over the names,
# which made it join and sort every present user (9 ms at 5,000, 2 ms now); the page takes
# the first names of the username index.
PRESENCE_USERS_SQL = """
    SELECT u.{name}, (
        SELECT COUNT(DISTINCT p.user_id) FROM chat_presence p
        WHERE p.room_id = %(room)s AND p.seen_at >= %(cutoff)s
    )
    FROM {users} u
    WHERE u.{pk} IN (
        SELECT p.user_id FROM chat_presence p WHERE p.room_id = %(room)s AND p.seen_at >= %(cutoff)s
    )
    ORDER BY u.{name}
    LIMIT %(limit)s
"""


@functools.cache
def presence_users_sql() -> str:
    """PRESENCE_USERS_SQL with the user model's table and columns."""
    user_model = get_user_model()
    meta = user_model._meta
    username = cast("Field[Any, Any]", meta.get_field(user_model.USERNAME_FIELD))
    quote = connection.ops.quote_name
    return PRESENCE_USERS_SQL.format(
        name=quote(str(username.column)), pk=quote(str(meta.pk.column)), users=quote(meta.db_table)
    )


def presence_count(*, room_id: int) -> int:
    """How many users have a live connection to the room."""
    return _present(room_id).values("user_id").distinct().count()


def presence_changes(*, room_id: int, user_ids: set[int]) -> tuple[list[str], list[str], int]:
    """Of these users, who is in the room now and who is not: (joined, left), by name; and
    how many are in the room in all."""
    present = set(_present(room_id).filter(user_id__in=user_ids).values_list("user_id", flat=True))
    names = _usernames(user_ids)
    joined = sorted(name for pk, name in names.items() if pk in present)
    left = sorted(name for pk, name in names.items() if pk not in present)
    return joined, left, presence_count(room_id=room_id)


def _present(room_id: int) -> PresenceQuerySet:
    return Presence.objects.filter(room_id=room_id).live(ttl=settings.CHAT["PRESENCE_TTL"])


def _usernames(user_ids: Any) -> dict[int, str]:
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    return dict(user_model.objects.filter(pk__in=user_ids).values_list("pk", field))
