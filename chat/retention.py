"""Retention: a room's owner may have its messages deleted after a number of days
(`Room.retention_days`, set through `services.room_retention_set`); the hourly job
`chat.tasks.messages_expire` (JOBS["SCHEDULE"]) deletes them, with their changes,
reactions and pictures (the uploads, and their files). A replay or a hub's gap filling
skips the seqs that are gone."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from chat.models import Message, Room
from media_tasks.services import uploads_delete

# Messages deleted per transaction: a big room is done in short steps.
EXPIRE_BATCH = 1000


def messages_expire(*, now: datetime | None = None) -> int:
    """Delete the messages (with their changes, reactions and pictures) older than their
    room's retention; returns how many."""
    now = now or timezone.now()
    deleted = 0
    for room_id, days in Room.objects.filter(retention_days__isnull=False).values_list(
        "pk", "retention_days"
    ):
        cutoff = now - timedelta(days=int(days or 0))
        while True:
            rows = list(
                Message.objects.filter(room_id=room_id, created_at__lt=cutoff).values_list(
                    "pk", "picture_id"
                )[:EXPIRE_BATCH]
            )
            if not rows:
                break
            batch = [pk for pk, _ in rows]
            # One transaction per batch, its cascade included; the pictures' files after it.
            with transaction.atomic():
                Message.objects.filter(pk__in=batch).delete()
                uploads_delete(upload_ids=[upload for _, upload in rows if upload is not None])
            deleted += len(batch)
            if len(batch) < EXPIRE_BATCH:
                break
    return deleted
