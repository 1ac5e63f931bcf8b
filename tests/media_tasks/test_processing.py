"""What the workers do with an upload (media_tasks/processing.py): damage only a decode finds
fails the jobs with the reason, and the next upload goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from media_tasks.models import Upload
from tests.media_tasks import images
from tests.media_tasks.uploading import finished, image_file, logged_in, run_workers_until
from workers.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


def test_a_file_cut_short_in_its_pixel_data_is_accepted_then_fails_in_the_workers(
    user: Any, password: str
) -> None:
    # The request checks headers and block structure only; finding a JPEG's missing end
    # takes a decode, which the workers do.
    client = logged_in(user, password)
    cut = image_file("truncated.jpg", images.jpeg_missing_its_end())
    response = client.post("/api/uploads/", {"image": cut})
    assert response.status_code == 202
    upload = response.json()["uploads"][0]
    run_workers_until(lambda: finished(upload["id"]))
    failed = client.get(upload["url"]).json()
    assert failed["status"] == "failed"
    assert failed["error"] == "could not decode the image: the file is truncated or damaged"
    assert failed["renditions"] == []
    assert {job["kind"]: job["status"] for job in failed["jobs"]} == {
        "thumbnails": "failed",
        "analysis": "failed",
    }


def test_a_file_that_fails_to_decode_in_the_worker_fails_clearly_and_the_next_goes_on(
    user: Any, password: str, settings: Any
) -> None:
    client = logged_in(user, password)
    bad = client.post("/api/uploads/", {"image": image_file("photo.jpg")}).json()["uploads"][0]
    good = client.post("/api/uploads/", {"image": image_file("photo.png")}).json()["uploads"][0]
    # Damage the stored original after the upload check passed.
    original = Path(settings.ORIGINALS_ROOT) / Upload.objects.get(pk=bad["id"]).original.name
    original.write_bytes(original.read_bytes()[:600])
    run_workers_until(lambda: finished(bad["id"], good["id"]))
    failed = client.get(bad["url"]).json()
    assert failed["status"] == "failed"
    assert "damaged" in failed["error"] or "decode" in failed["error"]
    assert failed["renditions"] == []
    assert client.get(good["url"]).json()["status"] == "done"
    # Bad input fails at once: no retries.
    assert Job.objects.get(pk=failed["jobs"][0]["id"]).attempts == 1
