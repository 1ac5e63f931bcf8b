"""Uploads on S3 (MEDIA_STORAGE=s3, django-storages) against a real S3-compatible server.

The server is moto's stand-alone one, a separate process speaking the S3 HTTP API; the site runs
as its real processes (embedded runserver, or runserver --noworker + runworker on Redis), and
this test looks at the bucket only through boto3 and at the files only through their URLs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from media_tasks.models import Upload
from media_tasks.tasks import make_renditions
from tests.media_tasks import images
from tests.media_tasks.s3 import REGION, THUMBNAIL_SIZES, s3_client
from tests.processes import Processes, login, wait_for
from workers.backends import enqueue_for
from workers.models import Job

pytestmark = pytest.mark.slow

# EXIF rotation, EXIF with a GPS block, a PNG with an ICC profile.
FILES = {
    "turned.jpg": lambda: images.oriented_photo(6),
    "gps.jpg": images.nonsense_gps_jpeg,
    "profile.png": images.png_with_srgb_profile,
}
EXTENSIONS = {"WEBP": ".webp", "JPEG": ".jpg"}
CONTENT_TYPES = {"WEBP": "image/webp", "JPEG": "image/jpeg"}


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def upload_details(client: httpx.Client, urls: list[str]) -> list[dict[str, Any]]:
    """The uploads' API details once every one has finished."""

    def finished() -> list[dict[str, Any]] | None:
        details = [client.get(url).json() for url in urls]
        if all(detail["status"] in {"done", "failed"} for detail in details):
            return details
        return None

    details: list[dict[str, Any]] = wait_for(finished, 30, "the uploads to finish", 0.2)
    assert [detail["status"] for detail in details] == ["done"] * len(urls), details
    return details


def expected_keys(details: list[dict[str, Any]]) -> set[str]:
    """Where the uploads' files belong: random names from the upload key, never the user's."""
    keys: set[str] = set()
    for detail in details:
        upload = Upload.objects.get(pk=detail["id"])
        keys.add(f"originals/{upload.key.hex}{upload.extension}")
        keys.update(
            f"renditions/{upload.key.hex}/{rendition['name']}{EXTENSIONS[rendition['format']]}"
            for rendition in detail["renditions"]
        )
    return keys


def assert_served_from_s3(
    client: httpx.Client, detail: dict[str, Any], original: bytes, *, endpoint: str, bucket: str
) -> None:
    """Every URL the API gives is a signed URL on the S3 endpoint that serves the right file;
    the original's goes through the owner's API first, to a URL that expires within a minute."""
    key = Upload.objects.get(pk=detail["id"]).key.hex
    assert detail["original_url"] == detail["url"] + "original"
    redirect = client.get(detail["original_url"])
    assert redirect.status_code == 302
    signed = redirect.headers["Location"]
    assert signed.startswith(f"{endpoint}/{bucket}/originals/{key}"), signed
    assert "X-Amz-Expires=60&" in signed or signed.endswith("X-Amz-Expires=60"), signed
    assert httpx.get(signed).content == original

    renditions = detail["renditions"]
    sizes = [int(size) for size in THUMBNAIL_SIZES.split(",")]
    assert {r["format"] for r in renditions} == {"WEBP", "JPEG"}
    assert {r["size"] for r in renditions} <= set(sizes)
    for rendition in renditions:
        url = rendition["url"]
        assert url.startswith(f"{endpoint}/{bucket}/renditions/{key}/{rendition['name']}"), url
        # Signed with SigV4 in the configured region (AWS_S3_REGION_NAME reached boto3).
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url, url
        assert f"%2F{REGION}%2Fs3%2F" in url, url
        response = httpx.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        assert response.headers["content-type"] == CONTENT_TYPES[rendition["format"]]
        assert len(response.content) == rendition["bytes"]
        with Image.open(io.BytesIO(response.content)) as img:
            img.load()
            assert img.format == rendition["format"]
            assert img.size == (rendition["width"], rendition["height"])
            assert max(img.size) <= rendition["size"]
            # No metadata leaves with a thumbnail: no EXIF (so no GPS), no XMP, no ICC.
            assert not img.getexif(), (rendition["name"], dict(img.getexif()))
            assert not {"exif", "xmp", "icc_profile"} & set(img.info), img.info.keys()


def run_renditions_again(user: Any, upload_id: int) -> Job:
    """Queue the thumbnails job of an upload once more, as a redelivery would, and await it."""
    with enqueue_for(owner=user, upload=upload_id):
        job_id = int(make_renditions.enqueue(upload_id).id)
    return wait_for(
        lambda: Job.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
        30,
        f"the repeated thumbnails job {job_id}",
    )


def upload_store_rerun_and_delete(
    web_url: str, user: Any, password: str, *, endpoint: str, bucket: str
) -> None:
    """The whole life of uploads on S3, as a user and the bucket's owner see it."""
    client = login(web_url, user.username, password)
    originals = {name: make() for name, make in FILES.items()}
    response = client.post(
        "/api/uploads/",
        files=[
            ("image", (name, data, "application/octet-stream")) for name, data in originals.items()
        ],
    )
    assert response.status_code == 202, response.text
    details = upload_details(client, [upload["url"] for upload in response.json()["uploads"]])

    keys = bucket_keys(endpoint, bucket)
    assert set(keys) == expected_keys(details)
    assert sum(key.startswith("originals/") for key in keys) == len(FILES)
    # Several sizes in two formats per picture (the 8x8 one only has room for one size).
    assert [len(detail["renditions"]) for detail in details] == [4, 2, 4]
    assert not [key for key in keys if any(Path(name).stem in key for name in FILES)]
    for detail, (name, original) in zip(details, originals.items(), strict=True):
        assert detail["name"] == name
        assert_served_from_s3(client, detail, original, endpoint=endpoint, bucket=bucket)

    # Running the thumbnails job again replaces its objects: one per rendition, same names.
    first = details[0]
    job = run_renditions_again(user, first["id"])
    assert job.status == "succeeded", job.error
    assert sorted(job.result["renditions"]) == sorted(r["name"] for r in first["renditions"])
    assert bucket_keys(endpoint, bucket) == keys
    again = client.get(first["url"]).json()
    assert sorted(r["name"] for r in again["renditions"]) == sorted(
        r["name"] for r in first["renditions"]
    )
    assert_served_from_s3(client, again, originals[first["name"]], endpoint=endpoint, bucket=bucket)

    # Deleting an upload removes every object of it, and only its own.
    assert client.delete(first["url"]).status_code == 204
    assert client.get(first["url"]).status_code == 404
    assert set(bucket_keys(endpoint, bucket)) == expected_keys(details[1:])
    for detail in details[1:]:
        assert client.delete(detail["url"]).status_code == 204
    assert bucket_keys(endpoint, bucket) == []


def test_embedded_runserver_stores_uploads_and_renditions_on_s3(
    processes: Processes, user: Any, password: str, s3_endpoint: str, bucket: str, s3_env: Any
) -> None:
    web = processes.runserver("web", REDIS_URL="", **s3_env)
    assert "Workers: running in this process" in web.output()
    upload_store_rerun_and_delete(web.url, user, password, endpoint=s3_endpoint, bucket=bucket)


@pytest.mark.redis
def test_runworker_on_redis_stores_renditions_on_s3(
    processes: Processes, user: Any, password: str, s3_endpoint: str, bucket: str, s3_env: Any
) -> None:
    web = processes.runserver("web", "--noworker", **s3_env)
    processes.runworker("w", "thumbnails", "compute", **s3_env)
    upload_store_rerun_and_delete(web.url, user, password, endpoint=s3_endpoint, bucket=bucket)
