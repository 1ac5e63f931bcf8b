"""The uploads app's rules: accepting files, queueing their processing, deleting them.
What the workers do with an upload is in media_tasks/processing.py."""

from __future__ import annotations

import functools
import logging
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from media_tasks import imaging
from media_tasks.exceptions import (
    UploadAbandoned,
    UploadOverQuota,
    UploadRateLimited,
    UploadRejected,
    UploadsBusy,
    UploadTooLarge,
)
from media_tasks.limits import image_limits
from media_tasks.models import PartialUpload, Upload
from media_tasks.tasks import analyse_upload, announce_ready, make_renditions
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


def upload_size_check(*, name: str, size: int) -> None:
    """Refuse a file of `size` bytes, by any path (POST, resumable, straight to S3), that is
    over UPLOAD_MAX_BYTES or empty; `name` is the file's, cleaned."""
    if size > settings.UPLOAD_MAX_BYTES:
        raise UploadTooLarge(
            f"{name}: the file is {megabytes(size)}, "
            f"the limit is {megabytes(settings.UPLOAD_MAX_BYTES)}"
        )
    if size <= 0:
        raise UploadRejected(f"{name}: the file is empty")


def upload_check(*, file: File[bytes]) -> imaging.ImageInfo:
    """Check one file by its content (headers only: the full decode is the worker's); raise
    UploadRejected naming it and the reason. At most UPLOAD_CHECKS_AT_ONCE checks run at
    once in a process; one that waits longer than UPLOAD_CHECK_WAIT is refused as busy."""
    name = clean_filename(file.name or "")
    upload_size_check(name=name, size=file.size or 0)
    checks = _checks_at_once()
    if not checks.acquire(timeout=settings.UPLOAD_CHECK_WAIT):
        raise UploadsBusy("the server is busy checking other uploads: try again in a moment")
    try:
        return imaging.inspect_upload(cast(BinaryIO, file), **image_limits())
    except imaging.ImageRejected as rejected:
        raise UploadRejected(f"{name}: {rejected.reason}") from None
    finally:
        checks.release()


@functools.cache
def _checks_at_once() -> threading.BoundedSemaphore:
    # A crafted file can make even a header check hold tens of MB (Pillow keeps the chunks
    # it reads): bound how many a process runs at once.
    return threading.BoundedSemaphore(settings.UPLOAD_CHECKS_AT_ONCE)


def upload_quota_check(
    *, owner: User, sizes: Sequence[int], resuming: PartialUpload | None = None
) -> None:
    """Refuse new pictures of `sizes` bytes past the owner's limits: UPLOADS_PER_HOUR files in
    the last hour (429, with the wait), UPLOAD_QUOTA_BYTES stored in all (413). Unfinished
    resumable uploads count as what they will be (but `resuming`, the one being finished)."""
    mine = Upload.objects.filter(owner=owner)
    partials = PartialUpload.objects.filter(owner=owner, upload__isnull=True)
    if resuming is not None:
        partials = partials.exclude(pk=resuming.pk)
    pending = list(partials.values_list("length", flat=True))
    hour_ago = timezone.now() - timedelta(hours=1)
    recent = list(mine.filter(created_at__gte=hour_ago).values_list("created_at", flat=True))
    per_hour = settings.UPLOADS_PER_HOUR
    if len(recent) + len(pending) + len(sizes) > per_hour:
        # The oldest counted upload leaves the hour first.
        wait = (min(recent) - hour_ago).total_seconds() if recent else 3600.0
        raise UploadRateLimited(
            f"at most {per_hour} pictures per hour: try again in {wait / 60:.0f} min",
            retry_after=wait,
        )
    stored = (mine.aggregate(total=Sum("bytes"))["total"] or 0) + sum(pending)
    adding = sum(sizes)
    quota = settings.UPLOAD_QUOTA_BYTES
    if stored + adding > quota:
        raise UploadOverQuota(
            f"your pictures would take {megabytes(stored + adding)}; "
            f"the limit is {megabytes(quota)}: delete some first"
        )


@dataclass(frozen=True, slots=True)
class Checked:
    """A file that passed its checks, ready to be stored: `place(upload)` puts its bytes in
    `upload.original` (written from a file, or copied where they already are: S3, from the
    object `direct_key`)."""

    name: str
    size: int
    info: imaging.ImageInfo
    place: Callable[[Upload], None]
    direct_key: str = ""

    @classmethod
    def of_file(cls, file: File[bytes], info: imaging.ImageInfo) -> Checked:
        def place(upload: Upload) -> None:
            upload.original.save("original", file, save=False)

        return cls(name=file.name or "", size=file.size or 0, info=info, place=place)


def upload_create(
    *,
    owner: User,
    files: Sequence[UploadedFile[bytes]],
    abandoned: Callable[[], bool] = lambda: False,
) -> list[Upload]:
    """Accept all files or none: check every one, store them, and queue their processing.
    If `abandoned()` says so before the commit (the client went away), nothing is kept."""
    if not files:
        raise UploadRejected("no file was sent (field 'image')")
    checked = [Checked.of_file(file, upload_check(file=file)) for file in files]
    return uploads_store(owner=owner, checked=checked, abandoned=abandoned)


def uploads_store(
    *,
    owner: User,
    checked: Sequence[Checked],
    abandoned: Callable[[], bool] = lambda: False,
    resuming: PartialUpload | None = None,
) -> list[Upload]:
    """Store files that passed their checks, within the owner's quota, as uploads, and queue
    their processing; all or none. Every way in (a form, tus, S3) ends here."""
    uploads: list[Upload] = []
    try:
        with transaction.atomic():
            # One upload of a user at a time: the quota counts what the last one stored.
            get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
            upload_quota_check(
                owner=owner, sizes=[item.size for item in checked], resuming=resuming
            )
            for item in checked:
                upload = Upload(
                    owner=owner,
                    original_name=clean_filename(item.name),
                    format=item.info.format,
                    content_type=item.info.mime_type,
                    width=item.info.width,
                    height=item.info.height,
                    bytes=item.size,
                    direct_key=item.direct_key,
                )
                item.place(upload)
                uploads.append(upload)
                upload.save()
                upload_enqueue_processing(upload=upload)
            if abandoned():
                raise UploadAbandoned("the client went away before its upload was accepted")
    except BaseException:
        # The rows rolled back; the files already written must go too.
        for upload in uploads:
            upload.original.delete(save=False)
        raise
    logger.info("uploads=%s owner=%s accepted", [u.pk for u in uploads], owner.pk)
    return uploads


def upload_enqueue_processing(*, upload: Upload) -> None:
    """Queue the thumbnails and the analysis of `upload` (after the caller's commit), and the
    `upload.ready` event once both succeeded."""
    with enqueue_for(owner=upload.owner, upload=upload.pk):
        thumbnails = make_renditions.enqueue(upload.pk)
        analysis = analyse_upload.enqueue(upload.pk)
    # Not the upload's own job (no `upload` in its events): the page knows its two.
    announce_ready.using(after=[thumbnails, analysis]).enqueue(upload.pk)
    upload.thumbnails_job_id = int(thumbnails.id)
    upload.analysis_job_id = int(analysis.id)
    upload.save(update_fields=["thumbnails_job", "analysis_job"])


def upload_renditions_regenerate(*, upload: Upload) -> None:
    """Queue the upload's thumbnails job again (after the caller's commit), as its job: the
    page shows its progress, and the new renditions replace the old."""
    with enqueue_for(owner=upload.owner, upload=upload.pk):
        job = make_renditions.enqueue(upload.pk)
    upload.thumbnails_job_id = int(job.id)
    upload.save(update_fields=["thumbnails_job"])


def upload_cancel(*, upload: Upload) -> int:
    """Cancel the upload's unfinished jobs (a running one stops); how many were."""
    return sum(job_cancel(job=job) for job in upload.jobs() if not job.is_finished)


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


def uploads_delete(*, upload_ids: Sequence[int]) -> None:
    """Delete these uploads as `upload_delete` does, once the caller's transaction commits
    (an app's rows that held them are gone by then: a chat message and its picture)."""

    def delete() -> None:
        for upload in Upload.objects.filter(pk__in=list(upload_ids)).select_related(
            "thumbnails_job", "analysis_job"
        ):
            upload_delete(upload=upload)

    if upload_ids:
        transaction.on_commit(delete, robust=True)
