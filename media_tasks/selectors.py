"""Read-only questions about uploads, and their JSON shape for the API and the page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from media_tasks import imaging
from media_tasks.models import Upload

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
    }
    if similar is not None:
        data["similar"] = similar
    return data
