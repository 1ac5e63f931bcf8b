"""Read-only questions about uploads, and their JSON shape for the API and the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.urls import reverse

from media_tasks import imaging
from media_tasks.models import Rendition, Upload
from workers.models import Job

JOB_KINDS = {"thumbnails_job": "thumbnails", "analysis_job": "analysis"}


def uploads_of(*, owner_id: int) -> QuerySet[Upload]:
    """The owner's uploads, newest first, with what their JSON needs."""
    return (
        Upload.objects.filter(owner_id=owner_id)
        .select_related("thumbnails_job", "analysis_job")
        .prefetch_related("renditions")
    )


def upload_of(*, owner_id: int, upload_id: int) -> Upload | None:
    """The upload if it is the owner's; None for anyone else's (the API answers 404)."""
    return uploads_of(owner_id=owner_id).filter(pk=upload_id).first()


def renditions_expected(upload: Upload) -> set[str]:
    """The names of the renditions the current THUMBNAIL_SIZES and THUMBNAIL_FORMATS give it."""
    return imaging.rendition_names(
        (upload.width, upload.height), settings.THUMBNAIL_SIZES, settings.THUMBNAIL_FORMATS
    )


def uploads_in_batches(*, batch_size: int) -> Iterator[list[Upload]]:
    """Every upload, oldest first, `batch_size` at a time, with its renditions' names and its
    thumbnails job."""
    last = 0
    while True:
        batch = list(
            Upload.objects.filter(pk__gt=last)
            .order_by("pk")
            .select_related("thumbnails_job", "owner")
            .prefetch_related(Prefetch("renditions", Rendition.objects.only("upload", "name")))[
                :batch_size
            ]
        )
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def renditions_idle(upload: Upload) -> bool:
    """Whether no thumbnails job of the upload is queued or running (one more would repeat it)."""
    return upload.thumbnails_job is None or upload.thumbnails_job.is_finished


def renditions_outdated(upload: Upload) -> bool:
    """Whether the upload's renditions are not those the settings ask for now, and its
    thumbnails job (the last one) finished successfully: a failed one is left to retries."""
    job = upload.thumbnails_job
    if job is None or job.status != Job.Status.SUCCEEDED:
        return False
    return {rendition.name for rendition in upload.renditions.all()} != renditions_expected(upload)


def uploads_similar_to(*, upload: Upload) -> list[int]:
    """Ids of the owner's other uploads whose perceptual hash is close to this one's."""
    if not upload.phash:
        return []
    others = (
        Upload.objects.filter(owner_id=upload.owner_id)
        .exclude(pk=upload.pk)
        .exclude(phash="")
        .values_list("pk", "phash")
    )
    return [
        pk
        for pk, phash in others
        if imaging.hamming(upload.phash, phash) <= settings.SIMILAR_MAX_DISTANCE
    ]


def upload_json(upload: Upload, *, similar: list[int] | None = None) -> dict[str, Any]:
    """The API's view of an upload; only ever built for its owner (location included)."""
    data: dict[str, Any] = {
        "id": upload.pk,
        "status": upload.status,
        "progress": upload.progress,
        "error": upload.error,
        "name": upload.original_name,
        "format": upload.format,
        "width": upload.width,
        "height": upload.height,
        "bytes": upload.bytes,
        "created_at": upload.created_at.isoformat(),
        "url": reverse("upload-detail", args=[upload.pk]),
        # Only through the owner's API: originals keep their metadata.
        "original_url": reverse("upload-original", args=[upload.pk]),
        "jobs": [
            {
                "id": job.pk,
                "kind": JOB_KINDS[field],
                "status": job.status,
                "progress": job.progress,
                "message": job.progress_message,
            }
            for field in JOB_KINDS
            if (job := getattr(upload, field)) is not None
        ],
        "renditions": [
            {
                "name": rendition.name,
                "size": rendition.size,
                "width": rendition.width,
                "height": rendition.height,
                "format": rendition.format,
                "bytes": rendition.bytes,
                "url": rendition.file.url,
            }
            for rendition in upload.renditions.all()
        ],
        "analysis": upload.analysis,
        "placeholder": upload.placeholder,
        "thumbhash": upload.thumbhash,
    }
    if similar is not None:
        data["similar"] = similar
    return data
