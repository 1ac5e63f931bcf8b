from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media_tasks.s3 import CREDENTIALS, REGION, THUMBNAIL_SIZES, s3_client
from tests.processes import free_port, wait_for


@pytest.fixture
def media_in_tmp(settings: Any, tmp_path: Path, empty_layer: None) -> Path:
    """Media, originals and resumable uploads' bytes under the test's own folder, and an
    empty channel layer."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ORIGINALS_ROOT = tmp_path / "originals"
    settings.UPLOAD_PARTIALS_ROOT = tmp_path / "partials"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3-compatible server in a process of its own, for the whole session."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"moto server exited:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(endpoint, timeout=1)
        except httpx.HTTPError:
            return False
        return True

    try:
        wait_for(answering, 30, "the moto S3 server to answer")
        yield endpoint
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket for each test, so that listing it shows that test's objects only."""
    name = f"media-{uuid.uuid4().hex[:16]}"
    s3_client(s3_endpoint).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return name


@pytest.fixture
def s3_env(s3_endpoint: str, bucket: str) -> dict[str, str]:
    """What a deployment sets for S3 media: the documented MEDIA_STORAGE and AWS_* variables."""
    return {
        "MEDIA_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "THUMBNAIL_SIZES": THUMBNAIL_SIZES,
        "THUMBNAIL_FORMATS": "webp,jpeg",
    }
