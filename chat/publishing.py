"""Numbering and broadcasting a room's messages and the changes to them (edits, deletes,
reactions): what the `chat-messages` worker does.

`messages_sequence` gives the room's pending messages, then its pending changes, the next
numbers of the room's one sequence, in the order they were stored, under the room's row lock;
`messages_publish` then broadcasts the room's unpublished messages and changes in sequence
order, under the same lock, and marks them published. A crash anywhere leaves rows that the
next run, or any later message's run, finishes. A published message that mentions members
also goes to each of them (every socket of theirs, whichever page it is on).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from chat import events
from chat.models import Message, MessageEvent, Room
from chat.selectors import sequenced_payloads
from wire import sockets
from workers.sender import call_from_sync

logger = logging.getLogger(__name__)

# Messages per broadcast: a backlog (after Redis was away) goes out in bounded layer messages.
PUBLISH_BATCH = 50


def messages_sequence(*, room_id: int) -> int:
    """Number the room's pending messages in the order they were stored; returns how many.

    The room's row lock makes one numbering at a time per room, so several workers never
    give out a number twice, and one sender's messages (stored one after the other) keep
    their order whichever worker runs first.
    """
    with transaction.atomic():
        room = Room.objects.select_for_update(no_key=True).filter(pk=room_id).first()
        if room is None:
            return 0
        pending = list(Message.objects.filter(room=room).pending().only("id"))
        # After the messages: a change is always to a message numbered before it.
        changes = list(MessageEvent.objects.filter(room=room).pending().only("id"))
        if not pending and not changes:
            return 0
        for row in pending:
            room.last_seq += 1
            row.seq = room.last_seq
        for change in changes:
            room.last_seq += 1
            change.seq = room.last_seq
        Message.objects.bulk_update(pending, ["seq"])
        MessageEvent.objects.bulk_update(changes, ["seq"])
        fields = ["last_seq"]
        if pending:
            room.last_message_at = timezone.now()
            fields.append("last_message_at")
        room.save(update_fields=fields)
    return len(pending) + len(changes)


def messages_publish(*, room_id: int) -> int:
    """Broadcast the room's sequenced, unpublished messages and changes in order; returns
    how many.

    Sent under the room's lock, so broadcasts of one room never overtake each other. What is
    sent is already committed; if marking it published fails, it is sent again later and the
    rooms' hubs drop the repeat by its seq.
    """
    layer = get_channel_layer()
    published = 0
    while True:
        with transaction.atomic():
            room = Room.objects.select_for_update(no_key=True).filter(pk=room_id).first()
            if room is None:
                return published
            messages = list(
                Message.objects.filter(room=room)
                .unpublished()
                .select_related("author")[:PUBLISH_BATCH]
            )
            changes = list(
                MessageEvent.objects.filter(room=room)
                .unpublished()
                .select_related("actor", "message__author")[:PUBLISH_BATCH]
            )
            # The first PUBLISH_BATCH of both together, in seq order.
            payloads = sequenced_payloads(messages, changes, room=room)[:PUBLISH_BATCH]
            if not payloads:
                return published
            reply_to = {m.seq: m.reply_to for m in messages}
            broadcast: events.Broadcast = {
                "type": events.CHAT_BROADCAST,
                "messages": payloads,
                "reply_to": [
                    reply_to.get(p["seq"], "") if p["type"] == events.CHAT_MESSAGE else ""
                    for p in payloads
                ],
            }
            call_from_sync(layer.group_send, events.room_group(room.pk), dict(broadcast))
            sent = {p["seq"] for p in payloads}
            now = timezone.now()
            Message.objects.filter(room=room, seq__in=sent).update(published_at=now)
            MessageEvent.objects.filter(room=room, seq__in=sent).update(published_at=now)
            mentioned = [m for m in messages if m.seq in sent and m.mentions]
        for message in mentioned:
            mentions_notify(message=message, room=room, layer=layer)
        published += len(payloads)


def mentions_notify(*, message: Message, room: Room, layer: Any) -> None:
    """Tell each member the message mentions, on every socket of theirs (at most once: a
    lost notice is not sent again, the message itself stays highlighted in the room)."""
    user_model = get_user_model()
    user_ids = user_model.objects.filter(
        **{f"{user_model.USERNAME_FIELD}__in": message.mentions}
    ).values_list("pk", flat=True)
    for user_id in user_ids:
        notice: events.MentionPayload = {
            "type": events.CHAT_MENTION,
            "user": user_id,
            "room": room.name,
            "title": room.display_name,
            "seq": int(message.seq or 0),
            "author": message.author.get_username(),
            "body": message.body[:200],
        }
        try:
            call_from_sync(layer.group_send, sockets.user_group(user_id), dict(notice))
        except Exception:
            logger.warning("room=%s mention of user=%s not sent", room.pk, user_id)
