"""Resumable uploads with a real client (tuspy) against the site's real server process, over
a connection the test cuts mid-way: the client resumes from the server's offset and sends
only what is missing, plus at most the chunk the cut lost."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from tests.media_tasks.proxy import CuttingProxy
from tests.processes import Processes, login

pytestmark = pytest.mark.slow

CHUNK = 2 * 1024 * 1024
# Request lines and headers of a few dozen requests, beside the file's bytes.
HEADERS_SLACK = 64 * 1024


def noise_png(side: int) -> bytes:
    """An RGB PNG of random pixels, stored uncompressed: 3 bytes a pixel."""
    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    img.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def test_tuspy_resumes_a_cut_20_mb_upload_sending_only_the_missing_bytes_and_one_chunk(
    processes: Processes, user: Any, password: str, tmp_path: Path
) -> None:
    web = processes.runserver("web", "--noworker")
    data = noise_png(2582)
    assert 19_900_000 < len(data) < 20_100_000
    picture = tmp_path / "big.png"
    picture.write_bytes(data)
    session = login(web.url, user.username, password)
    cookies = {name: session.cookies[name] for name in ("sessionid", "csrftoken")}
    headers = {
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "X-CSRFToken": cookies["csrftoken"],
    }
    with CuttingProxy(web.port or 0) as proxy:
        client = TusClient(f"{proxy.url}/api/uploads/tus/", headers=headers)
        uploader = client.uploader(
            file_path=str(picture), chunk_size=CHUNK, metadata={"filename": "big.png"}
        )
        proxy.cut_after(9 * 1024 * 1024)
        with pytest.raises((TusUploadFailed, TusCommunicationError)):
            uploader.upload()
        assert proxy.cuts == 1
        sent_before = proxy.sent
        # A new client, as after a restart: it asks the server where to go on from.
        resumed = client.uploader(
            file_path=str(picture), url=uploader.url, chunk_size=CHUNK, store_url=False
        )
        had = resumed.offset
        assert 4 * CHUNK <= had < len(data)
        assert had % CHUNK == 0
        resumed.upload()
        assert resumed.offset == len(data)
        # Only the missing bytes went again; in all, the file once and the chunk the cut lost.
        assert proxy.sent - sent_before <= len(data) - had + HEADERS_SLACK
        assert proxy.sent <= len(data) + CHUNK + HEADERS_SLACK

    state = session.get(resumed.url.replace(proxy.url, "")).json()
    assert state["offset"] == len(data)
    detail = session.get(state["upload"]["url"]).json()
    assert (detail["name"], detail["format"], detail["bytes"]) == ("big.png", "PNG", len(data))
    original = session.get(detail["original_url"])
    assert hashlib.sha256(original.content).digest() == hashlib.sha256(data).digest()
    # Nothing of it waits any more.
    assert list((tmp_path / "state" / "partials").iterdir()) == []
