"""Numbering and broadcasting a room's messages: what the `chat-messages` worker does.

`messages_sequence` gives the room's pending messages the next numbers, in the order they were
stored, under the room's row lock; `messages_publish` then broadcasts the room's unpublished
messages in sequence order, under the same lock, and marks them published. A crash anywhere
leaves rows that the next run, or any later message's run, finishes.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from chat import events
from chat.models import Message, Room
from chat.selectors import message_payload

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
        if not pending:
            return 0
        for message in pending:
            room.last_seq += 1
            message.seq = room.last_seq
        Message.objects.bulk_update(pending, ["seq"])
        room.last_message_at = timezone.now()
        room.save(update_fields=["last_seq", "last_message_at"])
    return len(pending)


def messages_publish(*, room_id: int) -> int:
    """Broadcast the room's sequenced, unpublished messages in order; returns how many.

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
            batch = list(
                Message.objects.filter(room=room)
                .unpublished()
                .select_related("author")[:PUBLISH_BATCH]
            )
            if not batch:
                return published
            broadcast: events.Broadcast = {
                "type": events.CHAT_BROADCAST,
                "messages": [message_payload(m, room=room) for m in batch],
                "reply_to": [m.reply_to for m in batch],
            }
            async_to_sync(layer.group_send)(events.room_group(room.pk), dict(broadcast))
            Message.objects.filter(pk__in=[m.pk for m in batch]).update(published_at=timezone.now())
        published += len(batch)
