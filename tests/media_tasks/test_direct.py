"""Uploads straight to S3 (media_tasks/direct.py) against the suite's real S3-compatible
server: the page's way (a signed POST form, the file to the bucket, then the API told), with
the web process behind a relay that counts what reaches it, so that the test sees the file's
bytes never did."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from media_tasks.models import Upload
from tests.media_tasks import images
from tests.media_tasks.proxy import CuttingProxy
from tests.media_tasks.s3 import s3_client
from tests.processes import Processes, log_in, wait_for

pytestmark = pytest.mark.slow


def keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def start(client: httpx.Client, name: str, data: bytes, content_type: str) -> httpx.Response:
    return client.post(
        "/api/uploads/s3/", json={"name": name, "size": len(data), "type": content_type}
    )


def post_to_bucket(started: dict[str, Any], data: bytes, name: str) -> httpx.Response:
    return httpx.post(started["url"], data=started["fields"], files={"file": (name, data)})


def test_a_file_goes_to_the_bucket_the_api_checks_its_head_and_workers_process_it(
    processes: Processes,
    user: Any,
    other_user: Any,
    password: str,
    s3_endpoint: str,
    bucket: str,
    s3_env: dict[str, str],
) -> None:
    web = processes.runserver("web", REDIS_URL="", UPLOAD_MAX_BYTES="2000000", **s3_env)
    photo = images.photo_like(1200, 800)
    assert len(photo) > 100_000
    with CuttingProxy(web.port or 0) as relay:
        client = httpx.Client(base_url=relay.url, timeout=10)
        client.headers["Referer"] = relay.url + "/"
        log_in(client, user.username, password)
        response = start(client, "../trip.jpg", photo, "image/jpeg")
        assert response.status_code == 201, response.text
        started = response.json()
        assert started["url"].startswith(f"{s3_endpoint}/{bucket}")
        key = started["fields"]["key"]
        assert key.startswith("incoming/")
        # The form's policy makes the bucket hold the type and the size range.
        policy = json.loads(base64.b64decode(started["fields"]["policy"]))
        assert {"Content-Type": "image/jpeg"} in policy["conditions"]
        assert ["content-length-range", 1, 2_000_000] in policy["conditions"]
        assert post_to_bucket(started, photo, "trip.jpg").status_code in {200, 201, 204}
        assert keys(s3_endpoint, bucket) == [key]

        # Someone else cannot complete it; the owner can, once.
        other = httpx.Client(base_url=relay.url, timeout=10)
        other.headers["Referer"] = relay.url + "/"
        log_in(other, other_user.username, password)
        token = {"token": started["token"]}
        assert other.post("/api/uploads/s3/complete", json=token).status_code == 404
        assert client.post("/api/uploads/s3/complete", json={"token": "forged"}).status_code == 404
        done = client.post("/api/uploads/s3/complete", json=token)
        assert done.status_code == 202, done.text
        assert client.post("/api/uploads/s3/complete", json=token).status_code == 404
        # The form is good until it expires: posted again, its object is there again, and
        # still makes no second upload (nor would two completes at the same moment).
        assert post_to_bucket(started, photo, "trip.jpg").status_code in {200, 201, 204}
        again = client.post("/api/uploads/s3/complete", json=token)
        assert again.status_code == 404
        assert again.json()["error"] == "trip.jpg: this upload was completed already"
        assert Upload.objects.count() == 1
        # The file never went through the web process: all it got were small requests.
        assert relay.sent < len(photo) // 4

        (created,) = done.json()["uploads"]

        def finished() -> dict[str, Any] | None:
            detail: dict[str, Any] = client.get(created["url"]).json()
            return detail if detail["status"] in {"done", "failed"} else None

        detail = wait_for(finished, 60, "the direct upload to be processed", 0.2)
    assert detail["status"] == "done", detail
    assert detail["name"] == "trip.jpg"
    assert (detail["format"], detail["width"], detail["height"]) == ("JPEG", 1200, 800)
    upload = Upload.objects.get(pk=created["id"])
    stored = keys(s3_endpoint, bucket)
    # The object moved to the upload's original; nothing is left under incoming/.
    assert f"originals/{upload.key.hex}.jpg" in stored
    assert not [k for k in stored if k.startswith("incoming/")]
    assert {r["format"] for r in detail["renditions"]} == {"WEBP", "JPEG"}
    original = s3_client(s3_endpoint).get_object(Bucket=bucket, Key=upload.original.name)
    assert original["Body"].read() == photo


def test_the_api_refuses_what_a_plain_upload_would_and_deletes_the_object(
    processes: Processes,
    user: Any,
    password: str,
    s3_endpoint: str,
    bucket: str,
    s3_env: dict[str, str],
) -> None:
    web = processes.runserver("web", "--noworker", UPLOAD_MAX_BYTES="100000", **s3_env)
    client = httpx.Client(base_url=web.url, timeout=10)
    client.headers["Referer"] = web.url + "/"
    log_in(client, user.username, password)
    too_large = start(client, "big.jpg", b"x" * 100_001, "image/jpeg")
    assert too_large.status_code == 413
    assert too_large.json()["error"].startswith("big.jpg: the file is ")
    assert start(client, "notes.txt", b"hello", "text/plain").status_code == 400

    notes = b"these are my notes, not a picture\n" * 10
    started = start(client, "notes.jpg", notes, "image/jpeg").json()
    assert post_to_bucket(started, notes, "notes.jpg").status_code in {200, 201, 204}
    refused = client.post("/api/uploads/s3/complete", json={"token": started["token"]})
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("notes.jpg: not an image")
    # A client that announced a small file and sent a larger one: the object's own size counts.
    small = images.picture("PNG")
    started = start(client, "liar.png", small, "image/png").json()
    post_to_bucket(started, small + b"\0" * 100_000, "liar.png")
    lied = client.post("/api/uploads/s3/complete", json={"token": started["token"]})
    assert lied.status_code == 413
    assert keys(s3_endpoint, bucket) == []
    assert not Upload.objects.exists()


def test_without_s3_the_direct_way_is_not_there(
    processes: Processes, user: Any, password: str
) -> None:
    web = processes.runserver("web", "--noworker")
    client = httpx.Client(base_url=web.url, timeout=10)
    client.headers["Referer"] = web.url + "/"
    log_in(client, user.username, password)
    response = start(client, "a.png", b"x" * 10, "image/png")
    assert response.status_code == 404
    assert response.json()["error"] == "direct uploads need MEDIA_STORAGE=s3"
