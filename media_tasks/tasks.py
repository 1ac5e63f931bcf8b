"""The image work, run by workers: thumbnails on `thumbnails`, analysis on `compute`.

Each task looks its upload up (it may have been deleted: then there is nothing to do) and calls
one idempotent function; running it twice replaces what the first run stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.tasks import task

from media_tasks import imaging
from media_tasks.models import Upload
from media_tasks.services import analysis_store, renditions_store
from workers.backends import JobContext
from workers.exceptions import PermanentFailure

logger = logging.getLogger(__name__)


def upload_or_none(upload_id: int) -> Upload | None:
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is None:
        logger.info("upload=%s is gone; nothing to do", upload_id)
    return upload


def from_original[T](upload: Upload, work: Callable[[BinaryIO], T]) -> T:
    """Run `work` on the stored original; an image that cannot be used fails the job at once."""
    try:
        with upload.original.open("rb") as original:
            return work(cast(BinaryIO, original))
    except imaging.ImageRejected as rejected:
        raise PermanentFailure(rejected.reason) from None
    except FileNotFoundError:
        raise PermanentFailure("the original file is missing from storage") from None


def progress_between(context: JobContext, start: int, end: int) -> imaging.ProgressCallback:
    """Map a step's own 0-100 progress onto [start, end] of the job's."""
    return lambda percent, message: context.progress(
        start + percent * (end - start) // 100, message
    )


@task(queue_name="thumbnails", takes_context=True)  # type: ignore[arg-type]  # JobContext
def make_renditions(context: JobContext, upload_id: int) -> dict[str, Any]:
    upload = upload_or_none(upload_id)
    if upload is None:
        return {"skipped": "upload deleted"}
    context.progress(5, "reading the original")
    renditions = from_original(
        upload,
        lambda original: imaging.make_renditions(
            original,
            sizes=settings.THUMBNAIL_SIZES,
            max_pixels=settings.UPLOAD_MAX_PIXELS,
            on_step=progress_between(context, 5, 90),
        ),
    )
    context.progress(92, "storing the renditions")
    renditions_store(upload=upload, renditions=renditions)
    return {"renditions": [r.name for r in renditions]}


@task(queue_name="compute", takes_context=True)  # type: ignore[arg-type]  # JobContext
def analyse_upload(context: JobContext, upload_id: int) -> dict[str, Any]:
    upload = upload_or_none(upload_id)
    if upload is None:
        return {"skipped": "upload deleted"}
    context.progress(5, "reading the original")
    analysis = from_original(
        upload,
        lambda original: imaging.analyse(
            original,
            max_pixels=settings.UPLOAD_MAX_PIXELS,
            on_step=progress_between(context, 5, 95),
        ),
    )
    analysis_store(upload=upload, analysis=analysis)
    return {"phash": analysis.phash}
