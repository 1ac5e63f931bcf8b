"""The uploads API and the jobs websocket, as a user of the site meets them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from media_tasks.models import Rendition, Upload
from project.asgi import application
from tests.clients import SAME_ORIGIN
from tests.jobs import run_worker_until
from tests.media_tasks import images
from workers import events
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path, empty_layer: None) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ORIGINALS_ROOT = tmp_path / "originals"
    return settings.MEDIA_ROOT


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
    assert {r["format"] for r in detail["renditions"]} == {"WEBP", "JPEG"}
    for rendition in detail["renditions"]:
        assert rendition["url"].startswith("/media/renditions/")
        assert max(rendition["width"], rendition["height"]) <= rendition["size"]
    # The owner sees the location of their own photo.
    assert detail["analysis"]["exif"]["gps"] is not None
    assert detail["placeholder"].startswith("data:image/")
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


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.jpg", b"these are my notes, not a picture\n" * 10, "notes.jpg: not an image"),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
            "SVG is not allowed",
        ),
        ("empty.png", b"", "empty.png: the file is empty"),
        ("broken.png", images.broken_png(), "broken.png: "),
        ("decompression_bomb.gif", images.decompression_bomb_gif(), "megapixels"),
        ("zero_width.gif", images.zero_width_gif(), "zero_width.gif: "),
        ("huge.png", images.huge_bilevel_png(), "megapixels"),
        ("long.gif", images.gif_of_frames(1001), "long.gif: image has too many frames"),
    ],
)
def test_a_bad_file_is_refused_with_its_name_and_reason_and_nothing_is_stored(
    user: Any, password: str, settings: Any, name: str, data: bytes | None, reason: str
) -> None:
    client = logged_in(user, password)
    response = client.post(
        "/api/uploads/", {"image": [image_file("photo.jpg"), image_file(name, data)]}
    )
    assert response.status_code == 400
    assert reason in response.json()["error"]
    # The good file of the same request is not stored either: all or nothing.
    assert not Upload.objects.exists()
    assert not Job.objects.exists()
    assert stored_files(settings) == []


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


def test_a_file_over_the_size_limit_is_413(user: Any, password: str, settings: Any) -> None:
    settings.UPLOAD_MAX_BYTES = 1000
    client = logged_in(user, password)
    response = client.post("/api/uploads/", {"image": image_file("photo.jpg")})
    assert response.status_code == 413
    assert response.json()["error"].startswith("photo.jpg: the file is ")
    assert stored_files(settings) == []


def test_a_hostile_file_name_is_kept_as_clean_data_only(
    user: Any, password: str, settings: Any
) -> None:
    client = logged_in(user, password)
    hostile = image_file("../../etc/\x00pass<b>wd.jpg")
    upload = client.post("/api/uploads/", {"image": hostile}).json()["uploads"][0]
    assert client.get(upload["url"]).json()["name"] == "pass<b>wd.jpg"
    assert all(path.startswith("originals/") for path in stored_files(settings))


def test_deleting_removes_every_stored_file(user: Any, password: str, settings: Any) -> None:
    client = logged_in(user, password)
    upload = client.post("/api/uploads/", {"image": image_file("photo.jpg")}).json()["uploads"][0]
    run_workers_until(lambda: finished(upload["id"]))
    assert len(stored_files(settings)) >= 3  # the original and its renditions
    assert client.delete(upload["url"]).status_code == 204
    assert client.get(upload["url"]).status_code == 404
    assert stored_files(settings) == []


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


def test_similar_uploads_are_found_among_the_owners_own(user: Any, password: str) -> None:
    client = logged_in(user, password)
    ids = [
        client.post("/api/uploads/", {"image": image_file(name, data)}).json()["uploads"][0]["id"]
        for name, data in [
            ("photo.jpg", None),
            ("photo.png", None),
            ("stripes.png", images.stripes(128, 128)),
        ]
    ]
    run_workers_until(lambda: finished(*ids))
    similar = client.get(f"/api/uploads/{ids[0]}/").json()["similar"]
    assert similar == [ids[1]]


async def test_the_jobs_socket_sends_a_snapshot_and_only_the_users_own_events(
    user: Any, other_user: Any, password: str
) -> None:
    def upload_as(who: Any) -> dict[str, Any]:
        client = logged_in(who, password)
        return client.post("/api/uploads/", {"image": image_file("photo.jpg")}).json()["uploads"][0]

    mine = await sync_to_async(upload_as)(user)
    theirs = await sync_to_async(upload_as)(other_user)
    cookie = await sync_to_async(lambda: logged_in(user, password).cookies["sessionid"].value)()
    communicator = WebsocketCommunicator(
        application,
        "/ws/jobs/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "jobs.snapshot"
    assert {job["upload"] for job in snapshot["jobs"]} == {mine["id"]}
    assert len(snapshot["jobs"]) == 2
    # Events for both users go out; only this user's reach this socket.
    layer = get_channel_layer()
    for upload in (theirs, mine):
        job = await database_sync_to_async(
            lambda pk=upload["id"]: Upload.objects.get(pk=pk).thumbnails_job
        )()
        await layer.group_send(
            events.user_group(job.owner_id),
            {"type": "job.progress", "job": job.pk, "upload": upload["id"], "progress": 50},
        )
    event = await communicator.receive_json_from()
    assert event["upload"] == mine["id"]
    assert await communicator.receive_nothing(0.3)
    await communicator.disconnect()


async def test_an_anonymous_jobs_socket_is_closed_with_4401() -> None:
    communicator = WebsocketCommunicator(
        application,
        "/ws/jobs/",
        headers=[*SAME_ORIGIN],
    )
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4401}


async def test_the_owner_hears_upload_ready_once_both_jobs_of_an_upload_succeeded(
    user: Any, password: str
) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)
    client = await sync_to_async(logged_in)(user, password)
    response = await sync_to_async(client.post)("/api/uploads/", {"image": image_file("a.png")})
    upload_id = response.json()["uploads"][0]["id"]
    await run_worker_until(
        lambda: Job.objects.filter(
            task_path__endswith="announce_ready", status="succeeded"
        ).exists(),
        channels=["thumbnails", "compute"],
    )
    frames = []
    while True:
        try:
            frames.append(await asyncio.wait_for(layer.receive(listener), 0.5))
        except TimeoutError:
            break
    ready = [frame for frame in frames if frame["type"] == "upload.ready"]
    assert ready == [{"type": "upload.ready", "upload": upload_id}]
    # It came after both jobs' outcomes.
    done = [i for i, frame in enumerate(frames) if frame["type"] == "job.done"]
    assert len(done) == 2
    assert max(done) < frames.index(ready[0])


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
