"""The image work, run by workers: thumbnails on `thumbnails`, analysis on `compute`.

Each task looks its upload up (it may have been deleted: then there is nothing to do) and calls
one idempotent step of media_tasks/processing.py, mapping that step's progress onto the job's.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.layers import get_channel_layer

from media_tasks import imaging, partials, processing
from media_tasks.models import Upload
from workers import events
from workers.backends import JobContext, task
from workers.sender import call_from_sync

# Sent to the owner's websocket once an upload's renditions and analysis are both done.
UPLOAD_READY = "upload.ready"

logger = logging.getLogger(__name__)


def upload_or_none(upload_id: int) -> Upload | None:
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None:
        logger.info("upload=%s is gone; nothing to do", upload_id)
    return upload


def progress_between(context: JobContext, start: int, end: int) -> imaging.ProgressCallback:
    """Map a step's own 0-100 progress onto [start, end] of the job's."""
    return lambda percent, message: context.progress(
        start + percent * (end - start) // 100, message
    )


@task(queue_name="thumbnails", takes_context=True)
def make_renditions(context: JobContext, upload_id: int) -> dict[str, Any]:
    upload = upload_or_none(upload_id)
    if upload is None:
        return {"skipped": "upload deleted"}
    context.progress(5, "reading the original")
    renditions = processing.upload_renditions_make(
        upload=upload, on_step=progress_between(context, 5, 95)
    )
    return {"renditions": [r.name for r in renditions]}


@task(queue_name="compute", takes_context=True)
def analyse_upload(context: JobContext, upload_id: int) -> dict[str, Any]:
    upload = upload_or_none(upload_id)
    if upload is None:
        return {"skipped": "upload deleted"}
    context.progress(5, "reading the original")
    analysis = processing.upload_analyse(upload=upload, on_step=progress_between(context, 5, 95))
    return {"phash": analysis.phash}


@task(queue_name="compute")
def announce_ready(upload_id: int) -> dict[str, Any]:
    """Run after the upload's two jobs succeeded (a fan-in): tell its owner's pages."""
    upload = upload_or_none(upload_id)
    if upload is None:
        return {"skipped": "upload deleted"}
    event = {"type": UPLOAD_READY, "upload": upload.pk}
    call_from_sync(get_channel_layer().group_send, events.user_group(upload.owner_id), event)
    return event


@task(queue_name="compute", unique=True)
def partial_uploads_expire() -> dict[str, Any]:
    """Recurring (JOBS["SCHEDULE"]): delete resumable uploads paused past their expiry."""
    return {"deleted": partials.partial_uploads_expire()}
