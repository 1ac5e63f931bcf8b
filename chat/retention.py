"""Retention: a room's owner may have its messages deleted after a number of days
(`Room.retention_days`, set through `services.room_retention_set`); the hourly job
`chat.tasks.messages_expire` (JOBS["SCHEDULE"]) deletes them, with their changes and
reactions. A replay or a hub's gap filling skips the seqs that are gone."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from chat.models import Message, Room

# Messages deleted per transaction: a big room is done in short steps.
EXPIRE_BATCH = 1000


def messages_expire(*, now: datetime | None = None) -> int:
    """Delete the messages (with their changes and reactions) older than their room's
    retention; returns how many."""
    now = now or timezone.now()
    deleted = 0
    for room_id, days in Room.objects.filter(retention_days__isnull=False).values_list(
        "pk", "retention_days"
    ):
        cutoff = now - timedelta(days=int(days or 0))
        while True:
            batch = list(
                Message.objects.filter(room_id=room_id, created_at__lt=cutoff).values_list(
                    "pk", flat=True
                )[:EXPIRE_BATCH]
            )
            if not batch:
                break
            # One transaction per batch (Django's delete is atomic), its cascade included.
            Message.objects.filter(pk__in=batch).delete()
            deleted += len(batch)
            if len(batch) < EXPIRE_BATCH:
                break
    return deleted
