"""The uploads JSON API as a user of the site meets it: uploading, listing, reading, deleting,
cancelling, and what anyone else gets."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from media_tasks.models import Rendition, Upload
from tests.media_tasks import images
from tests.media_tasks.uploading import (
    finished,
    image_file,
    logged_in,
    run_workers_until,
    stored_files,
)
from workers.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


def test_upload_answers_at_once_then_workers_make_renditions_and_analysis(
    user: Any, password: str, settings: Any
) -> None:
    client = logged_in(user, password)
    response = client.post(
        "/api/uploads/",
        {"image": [image_file("photo.jpg"), image_file("trip.jpg", images.gps_jpeg())]},
    )
    assert response.status_code == 202
    created = response.json()["uploads"]
    assert [u["status"] for u in created] == ["queued", "queued"]
    # Nothing slow happened in the request: no rendition exists yet.
    assert not Rendition.objects.exists()
    ids = [u["id"] for u in created]
    run_workers_until(lambda: finished(*ids))

    detail = client.get(created[1]["url"]).json()
    assert detail["status"] == "done"
    assert detail["progress"] == 100
    assert detail["error"] == ""
    assert detail["name"] == "trip.jpg"
    # The default formats: AVIF and WebP at every size (THUMBNAIL_FORMATS).
    assert {r["format"] for r in detail["renditions"]} == {"AVIF", "WEBP"}
    for rendition in detail["renditions"]:
        assert rendition["url"].startswith("/media/renditions/")
        assert max(rendition["width"], rendition["height"]) <= rendition["size"]
    # The owner sees the location of their own photo.
    assert detail["analysis"]["exif"]["gps"] is not None
    assert detail["placeholder"].startswith("data:image/")
    assert 20 <= len(detail["thumbhash"]) <= 48
    assert {job["kind"]: job["status"] for job in detail["jobs"]} == {
        "thumbnails": "succeeded",
        "analysis": "succeeded",
    }
    # Originals are stored under random names; the user's name is data only.
    assert all("trip" not in path for path in stored_files(settings))


def test_the_list_is_the_users_own_newest_first_and_paginated(
    user: Any, other_user: Any, password: str
) -> None:
    mine = logged_in(user, password)
    theirs = logged_in(other_user, password)
    first = mine.post("/api/uploads/", {"image": image_file("photo.png")}).json()["uploads"][0]
    second = mine.post("/api/uploads/", {"image": image_file("photo.gif")}).json()["uploads"][0]
    theirs.post("/api/uploads/", {"image": image_file("photo.webp")})
    listing = mine.get("/api/uploads/").json()
    assert [u["id"] for u in listing["uploads"]] == [second["id"], first["id"]]
    assert listing["count"] == 2
    assert listing["pages"] == 1
    assert mine.get("/api/uploads/?page=9").status_code == 404


def test_another_users_upload_is_a_404_for_reading_and_deleting(
    user: Any, other_user: Any, password: str, settings: Any
) -> None:
    mine = logged_in(user, password)
    theirs = logged_in(other_user, password)
    upload = mine.post("/api/uploads/", {"image": image_file("photo.jpg")}).json()["uploads"][0]
    assert theirs.get(upload["url"]).status_code == 404
    assert theirs.delete(upload["url"]).status_code == 404
    assert mine.get(upload["url"]).status_code == 200
    assert Upload.objects.filter(pk=upload["id"]).exists()


def test_anonymous_callers_get_401_in_json() -> None:
    response = Client().post("/api/uploads/", {"image": image_file("photo.jpg")})
    assert response.status_code == 401
    assert response.json() == {"type": "error", "code": "unauthenticated", "error": "log in first"}


def test_a_file_over_the_size_limit_is_413(user: Any, password: str, settings: Any) -> None:
    settings.UPLOAD_MAX_BYTES = 1000
    client = logged_in(user, password)
    response = client.post("/api/uploads/", {"image": image_file("photo.jpg")})
    assert response.status_code == 413
    assert response.json()["error"].startswith("photo.jpg: the file is ")
    assert stored_files(settings) == []


def test_deleting_removes_every_stored_file(user: Any, password: str, settings: Any) -> None:
    client = logged_in(user, password)
    upload = client.post("/api/uploads/", {"image": image_file("photo.jpg")}).json()["uploads"][0]
    run_workers_until(lambda: finished(upload["id"]))
    assert len(stored_files(settings)) >= 3  # the original and its renditions
    assert client.delete(upload["url"]).status_code == 204
    assert client.get(upload["url"]).status_code == 404
    assert stored_files(settings) == []


def test_the_owner_cancels_an_uploads_processing_and_another_user_cannot(
    user: Any, other_user: Any, password: str
) -> None:
    client = logged_in(user, password)
    created = client.post("/api/uploads/", {"image": image_file("a.png")}).json()["uploads"][0]
    other = logged_in(other_user, password)
    assert other.post(f"{created['url']}cancel").status_code == 404
    response = client.post(f"{created['url']}cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert {job["status"] for job in response.json()["jobs"]} == {"cancelled"}
    # The upload.ready that waited for them fails unrun: nothing left to do.
    (ready,) = Job.objects.filter(task_path__endswith="announce_ready")
    assert ready.status == "failed"
    assert client.get(f"{created['url']}cancel").status_code == 405
