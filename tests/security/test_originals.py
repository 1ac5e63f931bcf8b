"""Originals keep what the camera wrote (GPS included): only their owner fetches them, through
the API. Renditions stay clean and cacheable. Through a real nginx:
tests/deploy/test_nginx.py; on S3 (a signed URL that expires): tests/media_tasks/test_s3.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from media_tasks.models import Upload
from tests.media_tasks import images
from tests.media_tasks.uploading import image_file, logged_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path, empty_layer: None) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ORIGINALS_ROOT = tmp_path / "originals"


def uploaded(client: Client) -> dict[str, Any]:
    response = client.post("/api/uploads/", {"image": image_file("trip.jpg", images.gps_jpeg())})
    assert response.status_code == 202
    created: dict[str, Any] = response.json()["uploads"][0]
    detail: dict[str, Any] = client.get(created["url"]).json()
    return detail


def test_an_original_is_not_among_the_media_anyone_may_fetch(
    user: Any, password: str, settings: Any
) -> None:
    detail = uploaded(logged_in(user, password))
    name = Upload.objects.get(pk=detail["id"]).original.name
    # Not where MEDIA_URL (nginx's /media/, or Django's in development) serves files from.
    assert not (Path(settings.MEDIA_ROOT) / name).exists()
    assert (Path(settings.ORIGINALS_ROOT) / name).is_file()
    assert Client().get(f"/media/{name}").status_code == 404
    assert detail["original_url"] == f"/api/uploads/{detail['id']}/original"


def test_the_owner_gets_the_original_and_nobody_else(
    user: Any, other_user: Any, password: str
) -> None:
    owner = logged_in(user, password)
    detail = uploaded(owner)
    served = owner.get(detail["original_url"])
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == images.gps_jpeg()
    assert served["Content-Type"] == "image/jpeg"
    assert served["Cache-Control"] == "private, no-store"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served["Content-Security-Policy"]
    assert logged_in(other_user, password).get(detail["original_url"]).status_code == 404
    assert Client().get(detail["original_url"]).status_code == 401


def test_behind_nginx_the_api_hands_the_file_to_an_internal_location(
    user: Any, password: str, settings: Any
) -> None:
    settings.ORIGINALS_X_ACCEL_REDIRECT = "/internal/originals/"
    owner = logged_in(user, password)
    detail = uploaded(owner)
    served = owner.get(detail["original_url"])
    name = Upload.objects.get(pk=detail["id"]).original.name
    assert served.status_code == 200
    assert served["X-Accel-Redirect"] == f"/internal/originals/{name}"
    assert served.content == b""


def test_renditions_stay_public_and_carry_no_metadata(
    user: Any, password: str, settings: Any
) -> None:
    import asyncio
    import io

    from PIL import Image

    from tests.jobs import run_worker_until
    from tests.media_tasks.uploading import finished

    owner = logged_in(user, password)
    detail = uploaded(owner)
    asyncio.run(
        run_worker_until(lambda: finished(detail["id"]), channels=["thumbnails", "compute"])
    )
    renditions = Upload.objects.get(pk=detail["id"]).renditions.all()
    assert renditions
    for rendition in renditions:
        # Among the media web servers hand out (a plain URL under MEDIA_URL)...
        assert rendition.file.url.startswith(settings.MEDIA_URL)
        assert (Path(settings.MEDIA_ROOT) / rendition.file.name).is_file()
        # ... and nothing of the camera's in them.
        with rendition.file.open("rb") as data:
            assert not Image.open(io.BytesIO(data.read())).getexif()
