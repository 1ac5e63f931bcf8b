"""Resumable uploads on the wire (media_tasks/tus.py): tus 1.0 and the IETF draft as
tus-js-client speaks it, through Django's test client; the real clients over a cut
connection are in test_resumable_clients.py."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from django.test import Client

from media_tasks.models import PartialUpload, Upload
from tests.media_tasks import images
from tests.media_tasks.uploading import logged_in, stored_files
from workers.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def create(client: Client, length: int, name: str = "photo.png", **headers: str) -> Any:
    return client.generic(
        "POST",
        "/api/uploads/tus/",
        b"",
        headers={
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename=name, filetype="image/png"),
            **headers,
        },
    )


def patch(client: Client, url: str, offset: int, data: bytes, **headers: str) -> Any:
    return client.generic(
        "PATCH",
        url,
        data,
        content_type=OCTETS,
        headers={**TUS, "Upload-Offset": str(offset), **headers},
    )


def test_options_tells_the_version_extensions_size_and_checksums() -> None:
    response = Client().options("/api/uploads/tus/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert int(response["Tus-Max-Size"]) == 25 * 1024 * 1024
    assert "sha1" in response["Tus-Checksum-Algorithm"].split(",")


@pytest.mark.parametrize("chunk", [100, 1000, 10**6])
def test_an_upload_in_chunks_resumes_from_the_servers_offset_and_becomes_an_upload(
    user: Any, password: str, settings: Any, chunk: int
) -> None:
    data = images.picture("PNG")
    client = logged_in(user, password)
    created = create(client, len(data), name="../trip.png")
    assert created.status_code == 201, created.content
    url = created["Location"]
    assert url.startswith("/api/uploads/tus/")
    assert created["Tus-Resumable"] == "1.0.0"
    assert "GMT" in created["Upload-Expires"]
    offset = 0
    while offset < len(data):
        head = client.head(url, headers=TUS)
        assert head.status_code == 200
        assert int(head["Upload-Length"]) == len(data)
        assert head["Cache-Control"] == "no-store"
        offset = int(head["Upload-Offset"])
        if offset + chunk < len(data):
            assert not Upload.objects.exists()
        answer = patch(client, url, offset, data[offset : offset + chunk])
        assert answer.status_code == 204, answer.content
        assert int(answer["Upload-Offset"]) == min(len(data), offset + chunk)
        offset = int(answer["Upload-Offset"])
    state = client.get(url).json()
    assert state["offset"] == state["length"] == len(data)
    upload = Upload.objects.get(pk=state["upload"]["id"])
    assert state["upload"]["status"] == "queued"
    assert (upload.original_name, upload.format, upload.bytes) == ("trip.png", "PNG", len(data))
    assert upload.original.read() == data
    assert upload.thumbnails_job is not None
    assert upload.analysis_job is not None
    # The bytes waited apart and are gone; only the original is stored.
    assert stored_files(settings) == [upload.original.name]
    assert list(settings.UPLOAD_PARTIALS_ROOT.iterdir()) == []


def test_creation_with_upload_sends_the_first_bytes_with_the_post(user: Any, password: str) -> None:
    data = images.picture("GIF")
    client = logged_in(user, password)
    response = client.post(
        "/api/uploads/tus/",
        data[:50],
        content_type=OCTETS,
        headers={
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename="a.gif"),
        },
    )
    assert response.status_code == 201
    assert response["Upload-Offset"] == "50"
    assert patch(client, response["Location"], 50, data[50:]).status_code == 204
    assert Upload.objects.get().format == "GIF"


def test_a_wrong_offset_is_a_conflict_and_keeps_what_the_server_has(
    user: Any, password: str
) -> None:
    data = images.picture("PNG")
    client = logged_in(user, password)
    url = create(client, len(data))["Location"]
    assert patch(client, url, 0, data[:100]).status_code == 204
    conflict = patch(client, url, 50, data[50:150])
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "offset_mismatch"
    assert client.head(url, headers=TUS)["Upload-Offset"] == "100"


def test_a_chunk_that_does_not_match_its_checksum_is_refused_and_not_kept(
    user: Any, password: str
) -> None:
    data = images.picture("PNG")
    client = logged_in(user, password)
    url = create(client, len(data))["Location"]
    digest = base64.b64encode(hashlib.sha1(data[:100], usedforsecurity=False).digest()).decode()
    wrong = patch(client, url, 0, data[1:101], Upload_Checksum=f"sha1 {digest}")
    assert wrong.status_code == 460
    assert wrong.json()["code"] == "checksum_mismatch"
    assert client.head(url, headers=TUS)["Upload-Offset"] == "0"
    right = patch(client, url, 0, data[:100], Upload_Checksum=f"sha1 {digest}")
    assert right.status_code == 204
    assert right["Upload-Offset"] == "100"
    unknown = patch(client, url, 100, data[100:200], Upload_Checksum="crc32 AAAA")
    assert unknown.status_code == 400
    assert "crc32" in unknown.json()["error"]


def test_a_file_that_is_not_an_image_is_refused_when_complete_and_its_bytes_deleted(
    user: Any, password: str, settings: Any
) -> None:
    data = b"these are my notes, not a picture\n" * 10
    client = logged_in(user, password)
    url = create(client, len(data), name="notes.png")["Location"]
    response = patch(client, url, 0, data)
    assert response.status_code == 400
    assert response.json()["error"].startswith("notes.png: not an image")
    assert response["Tus-Resumable"] == "1.0.0"
    assert not Upload.objects.exists()
    assert not Job.objects.exists()
    assert not PartialUpload.objects.exists()
    assert client.head(url, headers=TUS).status_code == 404
    assert list(settings.UPLOAD_PARTIALS_ROOT.iterdir()) == []


def test_the_plain_uploads_limits_apply_at_creation(
    user: Any, password: str, settings: Any
) -> None:
    client = logged_in(user, password)
    too_large = create(client, settings.UPLOAD_MAX_BYTES + 1, name="big.png")
    assert too_large.status_code == 413
    assert too_large.json()["error"].startswith("big.png: the file is ")
    assert create(client, 0).status_code == 400
    assert create(client, -1).status_code == 400
    settings.UPLOAD_QUOTA_BYTES = 1000
    over = create(client, 1001)
    assert over.status_code == 413
    assert over.json()["code"] == "over_quota"
    # Unfinished resumable uploads count as what they will be.
    assert create(client, 600).status_code == 201
    assert create(client, 600).status_code == 413
    settings.UPLOAD_QUOTA_BYTES = 10**9
    settings.UPLOADS_PER_HOUR = 2
    assert create(client, 600).status_code == 201
    limited = create(client, 600)
    assert limited.status_code == 429
    assert "Retry-After" in limited
    assert not Upload.objects.exists()


def test_bytes_past_the_announced_length_are_refused(user: Any, password: str) -> None:
    client = logged_in(user, password)
    url = create(client, 10)["Location"]
    response = patch(client, url, 0, b"x" * 11)
    assert response.status_code == 413
    assert client.head(url, headers=TUS)["Upload-Offset"] == "0"


def test_another_users_upload_is_not_found_for_every_method(
    user: Any, other_user: Any, password: str
) -> None:
    mine = logged_in(user, password)
    theirs = logged_in(other_user, password)
    url = create(mine, 100)["Location"]
    assert theirs.head(url, headers=TUS).status_code == 404
    assert patch(theirs, url, 0, b"x").status_code == 404
    assert theirs.delete(url, headers=TUS).status_code == 404
    assert theirs.get(url).status_code == 404
    assert mine.head(url, headers=TUS)["Upload-Offset"] == "0"
    assert Client().head(url, headers=TUS).status_code == 401
    assert create(Client(), 100).status_code == 401


def test_termination_deletes_the_bytes(user: Any, password: str, settings: Any) -> None:
    client = logged_in(user, password)
    url = create(client, 100)["Location"]
    assert patch(client, url, 0, b"x" * 40).status_code == 204
    assert client.delete(url, headers=TUS).status_code == 204
    assert client.head(url, headers=TUS).status_code == 404
    assert list(settings.UPLOAD_PARTIALS_ROOT.iterdir()) == []


def test_a_request_without_a_version_header_is_412_and_bad_headers_are_400(
    user: Any, password: str
) -> None:
    client = logged_in(user, password)
    response = client.post("/api/uploads/tus/", headers={"Upload-Length": "10"})
    assert response.status_code == 412
    assert response["Tus-Version"] == "1.0.0"
    assert create(client, 10, Upload_Metadata="filename !!notbase64").status_code == 400
    url = create(client, 10)["Location"]
    plain = client.generic(
        "PATCH", url, b"x", content_type="text/plain", headers={**TUS, "Upload-Offset": "0"}
    )
    assert plain.status_code == 400
    assert patch(client, url, 0, b"x", Upload_Offset="one").status_code == 400


def test_method_override_lets_a_post_carry_a_patch(user: Any, password: str) -> None:
    data = images.picture("PNG")
    client = logged_in(user, password)
    url = create(client, len(data))["Location"]
    response = client.post(
        url,
        data,
        content_type=OCTETS,
        headers={**TUS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
    )
    assert response.status_code == 204
    assert Upload.objects.count() == 1


@pytest.mark.parametrize(
    ("interop", "content_type"), [("5", ""), ("6", "application/partial-upload")]
)
def test_the_ietf_draft_as_tus_js_client_speaks_it_uses_the_same_resource(
    user: Any, password: str, interop: str, content_type: str
) -> None:
    data = images.picture("PNG")
    client = logged_in(user, password)
    draft = {"Upload-Draft-Interop-Version": interop}
    created = client.generic(
        "POST",
        "/api/uploads/tus/",
        b"",
        headers={
            **draft,
            "Upload-Complete": "?0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(filename="draft.png"),
        },
    )
    assert created.status_code == 201
    assert created["Upload-Draft-Interop-Version"] == interop
    url = created["Location"]
    first = client.generic(
        "PATCH",
        url,
        data[:100],
        content_type=content_type,
        headers={**draft, "Upload-Offset": "0", "Upload-Complete": "?0"},
    )
    assert first.status_code == 204
    head = client.head(url, headers=draft)
    assert (head["Upload-Offset"], head["Upload-Complete"]) == ("100", "?0")
    last = client.generic(
        "PATCH",
        url,
        data[100:],
        content_type=content_type,
        headers={**draft, "Upload-Offset": "100", "Upload-Complete": "?1"},
    )
    assert last.status_code == 204
    assert last["Upload-Complete"] == "?1"
    assert Upload.objects.get().original_name == "draft.png"
    assert (
        client.post("/api/uploads/tus/", headers={"Upload-Draft-Interop-Version": "3"}).status_code
        == 412
    )
