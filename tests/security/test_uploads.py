"""Uploads on the public internet: crafted files cost the web process bounded work, a client
that goes away leaves nothing stored, one user cannot fill the disk or the queue, and a
failure's raw text (paths, library messages) is not shown to users. The memory and CPU
figures are in tests/bench/bench_uploads.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import ApplicationCommunicator

from media_tasks import services
from media_tasks.models import Upload
from project.asgi import application
from tests.media_tasks import images
from tests.media_tasks.uploading import image_file, logged_in, stored_files
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path, empty_layer: None) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ORIGINALS_ROOT = tmp_path / "originals"
    return settings.MEDIA_ROOT


def test_a_gif_of_a_million_frames_is_refused_by_its_headers(user: Any, password: str) -> None:
    response = logged_in(user, password).post(
        "/api/uploads/", {"image": image_file("long.gif", images.gif_of_frames(1_000_000))}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "long.gif: image has too many frames (more than 1000)"
    assert not Upload.objects.exists()


def test_a_huge_flat_png_is_accepted_without_being_decoded_in_the_request(
    user: Any, password: str
) -> None:
    # 7071 x 7071 RGBA in 190 KiB: decoding it costs 200 MB. The request reads its header.
    flat = images.flat_png(7071, 7071)
    response = logged_in(user, password).post(
        "/api/uploads/", {"image": image_file("flat.png", flat)}
    )
    assert response.status_code == 202
    upload = Upload.objects.get()
    assert (upload.width, upload.height) == (7071, 7071)
    assert not upload.renditions.exists()


def test_checks_at_once_are_bounded_and_a_waiting_one_is_told_the_server_is_busy(
    user: Any, password: str, settings: Any
) -> None:
    settings.UPLOAD_CHECK_WAIT = 0.2
    checks = services._checks_at_once()
    taken = [checks.acquire(timeout=1) for _ in range(settings.UPLOAD_CHECKS_AT_ONCE)]
    try:
        assert all(taken)
        response = logged_in(user, password).post(
            "/api/uploads/", {"image": image_file("photo.jpg")}
        )
    finally:
        for _ in taken:
            checks.release()
    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert not Upload.objects.exists()


def multipart(boundary: str, name: str, data: bytes) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


async def test_a_client_that_goes_away_before_its_upload_is_accepted_leaves_nothing(
    user: Any, password: str, settings: Any
) -> None:
    client = await sync_to_async(logged_in)(user, password)
    # Any 32 letters are a CSRF secret that the cookie and the header must match.
    token = "csrf" * 8
    boundary = "pipeline-test-boundary"
    body = multipart(boundary, "photo.jpg", images.picture("JPEG"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/uploads/",
        "raw_path": b"/api/uploads/",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"content-length", str(len(body)).encode()),
            (
                b"cookie",
                f"sessionid={client.cookies['sessionid'].value}; csrftoken={token}".encode(),
            ),
            (b"x-csrftoken", token.encode()),
        ],
    }
    # The check waits for its turn (the other checks are taken) while the client leaves.
    checks = services._checks_at_once()
    taken = [checks.acquire(timeout=1) for _ in range(settings.UPLOAD_CHECKS_AT_ONCE)]
    communicator = ApplicationCommunicator(application, scope)
    try:
        await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
        await asyncio.sleep(0.5)
        await communicator.send_input({"type": "http.disconnect"})
        await asyncio.sleep(0.2)
    finally:
        for _ in taken:
            checks.release()
    # The upload's thread goes on once its check may run, and keeps nothing.
    await asyncio.sleep(1.5)
    assert not await database_sync_to_async(Upload.objects.exists)()
    assert not await database_sync_to_async(Job.objects.exists)()
    assert await sync_to_async(stored_files)(settings) == []
    await communicator.wait(timeout=5)


def test_uploads_per_hour_are_limited_with_the_wait(
    user: Any, password: str, settings: Any
) -> None:
    settings.UPLOADS_PER_HOUR = 2
    client = logged_in(user, password)
    for _ in range(2):
        assert client.post("/api/uploads/", {"image": image_file("a.jpg")}).status_code == 202
    refused = client.post("/api/uploads/", {"image": image_file("b.jpg")})
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "rate_limited"
    assert body["error"].startswith("at most 2 pictures per hour: try again in ")
    assert 0 < body["retry_after"] <= 3600
    assert refused["Retry-After"] == str(body["retry_after"])
    assert Upload.objects.count() == 2


def test_stored_bytes_are_limited_per_user(
    user: Any, other_user: Any, password: str, settings: Any
) -> None:
    picture = images.picture("JPEG")
    settings.UPLOAD_QUOTA_BYTES = len(picture) * 2 + 10
    client = logged_in(user, password)
    assert (
        client.post(
            "/api/uploads/", {"image": [image_file("a.jpg", picture), image_file("b.jpg", picture)]}
        ).status_code
        == 202
    )
    refused = client.post("/api/uploads/", {"image": image_file("c.jpg", picture)})
    assert refused.status_code == 413
    assert refused.json()["code"] == "over_quota"
    assert "delete some first" in refused.json()["error"]
    # Another user's quota is their own.
    other = logged_in(other_user, password)
    assert other.post("/api/uploads/", {"image": image_file("d.jpg", picture)}).status_code == 202


def test_an_unexpected_failure_shows_users_a_plain_reason_and_operators_the_detail(
    user: Any, password: str
) -> None:
    client = logged_in(user, password)
    (created,) = client.post("/api/uploads/", {"image": image_file("photo.jpg")}).json()["uploads"]
    upload = Upload.objects.get(pk=created["id"])
    job = upload.thumbnails_job
    assert job is not None
    assert job.claim("worker-1")
    detail = "OSError: [Errno 28] No space left on device: '/var/lib/pipeline/media/x.webp'"
    assert job.set_failed(error=detail, error_class="builtins.OSError", retry=False)
    shown = client.get(created["url"]).json()
    assert shown["status"] == "failed"
    assert "/var/lib" not in shown["error"]
    assert "Errno" not in shown["error"]
    assert shown["error"].startswith("processing failed because of an unexpected error")
    # The admin and the log keep what happened.
    assert Job.objects.get(pk=job.pk).error == detail
    # A failure the runtime words for users is shown as it is.
    permanent = upload.analysis_job
    assert permanent is not None
    assert permanent.claim("worker-1")
    permanent.set_failed(
        error="could not decode the image: the file is truncated or damaged",
        error_class="workers.exceptions.PermanentFailure",
        retry=False,
    )
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    assert client.get(created["url"]).json()["error"] == (
        "could not decode the image: the file is truncated or damaged"
    )


async def test_a_failed_jobs_event_carries_the_plain_reason(user: Any) -> None:
    from channels.layers import get_channel_layer

    from workers import events

    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)

    def failed_job() -> Job:
        from tests import tasks
        from workers.backends import enqueue_for

        with enqueue_for(owner=user):
            result = tasks.always_fails.using(max_attempts=1).enqueue("disk /srv/x is on fire")
        return Job.objects.get(pk=result.id)

    job = await database_sync_to_async(failed_job)()
    from tests.jobs import run_worker_until

    await run_worker_until(lambda: Job.objects.get(pk=job.pk).status == "failed")
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(listener), 0.5))
        except TimeoutError:
            break
    (failed,) = [event for event in received if event["type"] == "job.failed"]
    assert "/srv/x" not in failed["error"]
    assert failed["error"].startswith("processing failed because of an unexpected error")
    assert json.dumps(failed)
