"""The uploads app's rules: accepting files, queueing their processing, deleting them.
What the workers do with an upload is in media_tasks/processing.py."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from media_tasks import imaging
from media_tasks.exceptions import UploadRejected, UploadTooLarge
from media_tasks.models import Upload
from media_tasks.tasks import analyse_upload, make_renditions
from workers.backends import enqueue_for
from workers.services import job_cancel

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


def clean_filename(name: str) -> str:
    """The user's file name as data: last path part, no control characters, at most 255."""
    base = PurePosixPath(name.replace("\\", "/")).name
    printable = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return printable[:255] or "unnamed"


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def upload_check(*, file: UploadedFile[bytes]) -> imaging.ImageInfo:
    """Check one file by its content; raise UploadRejected naming it and the reason."""
    name = clean_filename(file.name or "")
    if file.size is not None and file.size > settings.UPLOAD_MAX_BYTES:
        raise UploadTooLarge(
            f"{name}: the file is {megabytes(file.size)}, "
            f"the limit is {megabytes(settings.UPLOAD_MAX_BYTES)}"
        )
    if not file.size:
        raise UploadRejected(f"{name}: the file is empty")
    try:
        return imaging.inspect_upload(cast(BinaryIO, file), max_pixels=settings.UPLOAD_MAX_PIXELS)
    except imaging.ImageRejected as rejected:
        raise UploadRejected(f"{name}: {rejected.reason}") from None


def upload_create(*, owner: User, files: Sequence[UploadedFile[bytes]]) -> list[Upload]:
    """Accept all files or none: check every one, store them, and queue their processing."""
    if not files:
        raise UploadRejected("no file was sent (field 'image')")
    checked = [(file, upload_check(file=file)) for file in files]
    uploads: list[Upload] = []
    try:
        with transaction.atomic():
            for file, info in checked:
                upload = Upload(
                    owner=owner,
                    original_name=clean_filename(file.name or ""),
                    format=info.format,
                    content_type=info.mime_type,
                    width=info.width,
                    height=info.height,
                    bytes=file.size or 0,
                )
                upload.original.save("original", file, save=False)
                uploads.append(upload)
                upload.save()
                upload_enqueue_processing(upload=upload)
    except BaseException:
        # The rows rolled back; the files already written must go too.
        for upload in uploads:
            upload.original.delete(save=False)
        raise
    logger.info("uploads=%s owner=%s accepted", [u.pk for u in uploads], owner.pk)
    return uploads


def upload_enqueue_processing(*, upload: Upload) -> None:
    """Queue the thumbnails and the analysis of `upload` (after the caller's commit)."""
    with enqueue_for(owner=upload.owner, upload=upload.pk):
        thumbnails = make_renditions.enqueue(upload.pk)
        analysis = analyse_upload.enqueue(upload.pk)
    upload.thumbnails_job_id = int(thumbnails.id)
    upload.analysis_job_id = int(analysis.id)
    upload.save(update_fields=["thumbnails_job", "analysis_job"])


def upload_delete(*, upload: Upload) -> None:
    """Delete the upload, every stored file of it, and its unfinished jobs."""
    for job in upload.jobs():
        if not job.is_finished:
            job_cancel(job=job)
    files = [upload.original, *(rendition.file for rendition in upload.renditions.all())]
    upload.delete()
    for file in files:
        file.delete(save=False)
    logger.info("upload=%s deleted with %d files", upload.pk, len(files))
