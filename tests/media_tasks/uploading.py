"""What the uploads tests share: a logged-in client, test pictures as uploads, workers run
until uploads finished, and the files stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from media_tasks.models import Upload
from tests.jobs import run_worker_until
from tests.media_tasks import images


def stored_files(settings: Any) -> list[str]:
    """Every file stored: media (renditions) and originals, by name in their storage."""
    roots = [Path(settings.MEDIA_ROOT), Path(settings.ORIGINALS_ROOT)]
    return sorted(
        str(p.relative_to(root)) for root in roots for p in root.rglob("*") if p.is_file()
    )


def logged_in(user: Any, password: str) -> Client:
    client = Client()
    assert client.login(username=user.username, password=password)
    return client


# The test picture in the format a file name suggests.
FORMATS = {".jpg": "JPEG", ".png": "PNG", ".gif": "GIF", ".webp": "WEBP"}


def image_file(name: str, data: bytes | None = None) -> SimpleUploadedFile:
    """An upload called ``name``: ``data``, or else the test picture in the name's format."""
    return SimpleUploadedFile(
        name, data if data is not None else images.picture(FORMATS[Path(name).suffix])
    )


def run_workers_until(condition: Any) -> None:
    asyncio.run(run_worker_until(condition, channels=["thumbnails", "compute"]))


def finished(*upload_ids: int) -> bool:
    uploads = Upload.objects.filter(pk__in=upload_ids).select_related(
        "thumbnails_job", "analysis_job"
    )
    return len(uploads) == len(upload_ids) and all(u.status in {"done", "failed"} for u in uploads)
