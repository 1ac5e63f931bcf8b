"""The rules of accepting uploads (media_tasks/services.py), through the API: all files or none,
refusals that name the file and the reason, file names kept as clean data."""

from __future__ import annotations

from typing import Any

import pytest

from media_tasks.models import Upload
from tests.media_tasks import images
from tests.media_tasks.uploading import image_file, logged_in, stored_files
from workers.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


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


def test_a_hostile_file_name_is_kept_as_clean_data_only(
    user: Any, password: str, settings: Any
) -> None:
    client = logged_in(user, password)
    hostile = image_file("../../etc/\x00pass<b>wd.jpg")
    upload = client.post("/api/uploads/", {"image": hostile}).json()["uploads"][0]
    assert client.get(upload["url"]).json()["name"] == "pass<b>wd.jpg"
    assert all(path.startswith("originals/") for path in stored_files(settings))
