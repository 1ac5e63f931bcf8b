"""Read-only questions about rooms, messages and presence, answered as JSON-safe payloads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F

from chat import events
from chat.models import Message, Presence, Room

# Messages per history frame of a replay: a long absence arrives in several bounded frames.
REPLAY_FRAME = 100


def message_payload(message: Message, *, room: Room | None = None) -> events.MessagePayload:
    """The message as every client sees it (`room` saves a query when the caller has it)."""
    return {
        "type": events.CHAT_MESSAGE,
        "id": message.pk,
        "seq": int(message.seq or 0),
        "room": (room or message.room).name,
        "author": message.author.get_username(),
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "client_id": message.client_id,
    }


def ack_payload(message: Message) -> events.AckPayload:
    return events.ack(client_id=message.client_id, message_id=message.pk, seq=message.seq)


def _payloads(messages: Any, room: Room) -> list[events.MessagePayload]:
    return [message_payload(m, room=room) for m in messages]


def _sequenced(room: Room) -> Any:
    return Message.objects.filter(room=room).sequenced().select_related("author")


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
) -> list[events.MessagePayload]:
    """The first `limit` messages with after < seq <= upto (or all after), in order."""
    messages = _sequenced(room).filter(seq__gt=after).order_by("seq")
    if upto is not None:
        messages = messages.filter(seq__lte=upto)
    return _payloads(messages[:limit], room)


def room_last_seq(*, room_id: int) -> int:
    """The room's highest seq so far (0 before its first message)."""
    return Room.objects.values_list("last_seq", flat=True).get(pk=room_id)


@dataclass(frozen=True, slots=True)
class Replay:
    """What a connection sends first, and the seq its client has seen once it is sent."""

    frames: list[events.HistoryPayload]
    cursor: int


def history_on_connect(*, room: Room, since: int | None) -> Replay:
    """The latest messages; or, after a reconnect, exactly those after seq `since`.

    More missed than REPLAY_MAX, or a `since` beyond the room's last message (a client from
    before a reset), gets the latest messages with `reset`, so the page starts over.
    """
    if since is not None:
        limit = int(settings.CHAT["REPLAY_MAX"])
        missed = list(_sequenced(room).filter(seq__gt=since).order_by("seq")[: limit + 1])
        last_seq = room_last_seq(room_id=room.pk)
        if len(missed) <= limit and since <= last_seq:
            frames: list[events.HistoryPayload] = []
            for start in range(0, max(len(missed), 1), REPLAY_FRAME):
                page = missed[start : start + REPLAY_FRAME]
                first = (page[0].seq or 0) if page else since + 1
                frames.append(
                    {
                        "type": events.CHAT_HISTORY,
                        "messages": _payloads(page, room),
                        "has_more": first > 1,
                    }
                )
            return Replay(frames=frames, cursor=(missed[-1].seq or 0) if missed else since)
    latest = messages_latest(room=room)
    if since is not None:
        latest["reset"] = True
    cursor = latest["messages"][-1]["seq"] if latest["messages"] else 0
    return Replay(frames=[latest], cursor=cursor)


def rooms_active(*, limit: int = 50) -> list[Room]:
    """Public rooms with recent messages, the most recently active first."""
    return list(Room.objects.public().active()[:limit])


def rooms_of(*, user_id: int) -> list[Room]:
    """The rooms the user is a member of, the most recently active first."""
    return list(
        Room.objects.filter(memberships__user_id=user_id).order_by(
            F("last_message_at").desc(nulls_last=True), "name"
        )
    )


def room_members(*, room: Room) -> list[dict[str, str]]:
    """Who belongs to the room, by name, with their role (for its members only)."""
    return [
        {"username": username, "role": role}
        for username, role in room.memberships.order_by("user__username").values_list(
            "user__username", "role"
        )
    ]


def presence_users(*, room_id: int) -> list[str]:
    """The names of the users with a live connection to the room, sorted."""
    ttl: float = settings.CHAT["PRESENCE_TTL"]
    user_ids = Presence.objects.filter(room_id=room_id).live(ttl=ttl).values("user_id")
    return sorted(_usernames(user_ids).values())


def presence_changes(*, room_id: int, user_ids: set[int]) -> tuple[list[str], list[str]]:
    """Of these users, who is in the room now and who is not: (joined, left), by name."""
    ttl: float = settings.CHAT["PRESENCE_TTL"]
    present = set(
        Presence.objects.filter(room_id=room_id, user_id__in=user_ids)
        .live(ttl=ttl)
        .values_list("user_id", flat=True)
    )
    names = _usernames(user_ids)
    joined = sorted(name for pk, name in names.items() if pk in present)
    left = sorted(name for pk, name in names.items() if pk not in present)
    return joined, left


def _usernames(user_ids: Any) -> dict[int, str]:
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    return dict(user_model.objects.filter(pk__in=user_ids).values_list("pk", field))
