"""`manage.py renditions` (media_tasks/management/commands/renditions.py): after a change of
THUMBNAIL_SIZES or THUMBNAIL_FORMATS, --missing queues the uploads whose renditions differ, in
batches with progress, and the workers bring them in line; --all queues every idle upload."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from media_tasks.models import Upload
from tests.media_tasks.uploading import finished, image_file, logged_in, run_workers_until
from workers.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


def renditions(*args: str) -> str:
    out = io.StringIO()
    call_command("renditions", *args, stdout=out)
    return out.getvalue()


def names(upload_id: int) -> set[str]:
    return set(Upload.objects.get(pk=upload_id).renditions.values_list("name", flat=True))


def test_missing_queues_only_uploads_whose_renditions_differ_and_workers_bring_them_in_line(
    user: Any, password: str, settings: Any
) -> None:
    settings.THUMBNAIL_SIZES = [100, 50]
    settings.THUMBNAIL_FORMATS = {100: ["WEBP", "JPEG"], 50: ["WEBP", "JPEG"]}
    client = logged_in(user, password)
    ids = [
        client.post("/api/uploads/", {"image": image_file(name)}).json()["uploads"][0]["id"]
        for name in ("a.png", "b.jpg", "c.gif")
    ]
    run_workers_until(lambda: finished(*ids))
    assert names(ids[0]) == {"100-webp", "100-jpeg", "50-webp", "50-jpeg"}
    assert "queued 0" in renditions("--missing")

    # AVIF comes in beside WebP, the JPEG fallback goes, at 100 px only.
    settings.THUMBNAIL_FORMATS = {100: ["AVIF", "WEBP"], 50: ["WEBP", "JPEG"]}
    before = Job.objects.count()
    out = renditions("--missing", "--batch-size", "2")
    assert out.splitlines() == [
        "checked 2/3 uploads, queued 2",
        "checked 3/3 uploads, queued 3",
        "done: 3 of 3 uploads queued for new renditions",
    ]
    assert Job.objects.count() == before + 3
    # While they are queued, asking again queues nothing twice.
    assert "queued 0" in renditions("--missing")
    for upload in Upload.objects.filter(pk__in=ids):
        # The analysis stays done; the thumbnails are to make again.
        assert upload.status == "processing"
        assert upload.thumbnails_job is not None
        assert upload.thumbnails_job.status == "queued"
    run_workers_until(lambda: finished(*ids))
    for upload_id in ids:
        assert names(upload_id) == {"100-avif", "100-webp", "50-webp", "50-jpeg"}
        assert Upload.objects.get(pk=upload_id).status == "done"
    # The JPEG of 100 px is gone from storage too.
    stored = {r.file.name for r in Upload.objects.get(pk=ids[0]).renditions.all()}
    assert not [name for name in stored if name.endswith("100-jpeg.jpg")]
    assert not list(settings.MEDIA_ROOT.rglob("100-jpeg.jpg"))
    assert "queued 0" in renditions("--missing")

    # --all queues every upload whose processing is idle.
    assert renditions("--all").splitlines()[-1] == "done: 3 of 3 uploads queued for new renditions"


def test_one_of_missing_or_all_is_required_and_batches_are_positive() -> None:
    with pytest.raises(CommandError):
        renditions()
    with pytest.raises(CommandError, match="at least 1"):
        renditions("--missing", "--batch-size", "0")
