"""Uploads and their renditions. An upload's progress and outcome are its jobs' (workers.Job)."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.db import models

from media_tasks.storage import originals_storage
from workers.models import Job


def original_path(upload: Upload, filename: str) -> str:
    # Random names: the user's file name is kept as data only, never as a path.
    return f"originals/{upload.key.hex}{upload.extension}"


class Upload(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        DONE = "done"
        FAILED = "failed"

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    # Kept apart from the media web servers hand out (media_tasks/storage.py).
    original = models.FileField(upload_to=original_path, max_length=255, storage=originals_storage)
    original_name = models.CharField(max_length=255)
    format = models.CharField(max_length=16)
    content_type = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    thumbnails_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    analysis_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Filled by the analysis task.
    analysis = models.JSONField(null=True, blank=True)
    phash = models.CharField(max_length=16, blank=True, db_index=True)
    placeholder = models.TextField(blank=True)
    # Base64 of a ThumbHash (media_tasks/imaging/thumbhash.py), about 32 characters.
    thumbhash = models.CharField(max_length=64, blank=True)
    # The bucket object an upload straight to S3 was made from (media_tasks/direct.py): one
    # upload per object, however often its token is sent.
    direct_key = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="upload_owner_newest")]
        constraints = [
            models.UniqueConstraint(
                fields=["direct_key"],
                condition=~models.Q(direct_key=""),
                name="upload_one_per_direct_key",
            )
        ]

    def __str__(self) -> str:
        return f"upload {self.pk} {self.original_name!r}"

    EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "AVIF": ".avif"}

    @property
    def extension(self) -> str:
        return self.EXTENSIONS.get(self.format, "")

    def jobs(self) -> list[Job]:
        return [job for job in (self.thumbnails_job, self.analysis_job) if job is not None]

    @property
    def status(self) -> str:
        """Derived from the jobs, which are the truth: failed if one failed, done if all did."""
        jobs = self.jobs()
        statuses = {job.status for job in jobs}
        if statuses & {Job.Status.FAILED, Job.Status.CANCELLED}:
            return self.Status.FAILED
        if jobs and statuses == {Job.Status.SUCCEEDED}:
            return self.Status.DONE
        if Job.Status.RUNNING in statuses or Job.Status.SUCCEEDED in statuses:
            return self.Status.PROCESSING
        return self.Status.QUEUED

    @property
    def progress(self) -> int:
        jobs = self.jobs()
        return sum(job.progress for job in jobs) // len(jobs) if jobs else 0

    @property
    def error(self) -> str:
        for job in self.jobs():
            if job.status == Job.Status.FAILED:
                return job.reason
            if job.status == Job.Status.CANCELLED:
                return "processing was cancelled"
        return ""


def rendition_path(upload: Upload, name: str, extension: str) -> str:
    return f"renditions/{upload.key.hex}/{name}{extension}"


class Rendition(models.Model):
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="renditions")
    name = models.CharField(max_length=32)
    size = models.PositiveIntegerField(help_text="Requested longest side.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16)
    bytes = models.PositiveIntegerField()
    file = models.FileField(max_length=255)

    class Meta:
        ordering = ["-size", "format"]
        constraints = [
            models.UniqueConstraint(fields=["upload", "name"], name="rendition_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.upload_id}/{self.name}"


class PartialUpload(models.Model):
    """A resumable upload in progress (tus, media_tasks/resumable.py): its bytes so far are a
    file under UPLOAD_PARTIALS_ROOT named by `key`; once complete and checked, `upload` is the
    Upload made of it. Kept until `expires_at`, then the recurring clean-up deletes it."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="partial_uploads"
    )
    name = models.CharField(max_length=255)
    length = models.PositiveBigIntegerField()
    offset = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    upload = models.OneToOneField(
        Upload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["owner", "upload"], name="partial_owner_unfinished")]

    def __str__(self) -> str:
        return f"partial upload {self.key} {self.offset}/{self.length}"

    @property
    def path(self) -> Path:
        return Path(settings.UPLOAD_PARTIALS_ROOT) / self.key.hex

    @property
    def is_complete(self) -> bool:
        return self.upload_id is not None
