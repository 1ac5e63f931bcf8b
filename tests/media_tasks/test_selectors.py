"""Read-only questions about uploads (media_tasks/selectors.py): similar uploads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.media_tasks import images
from tests.media_tasks.uploading import finished, image_file, logged_in, run_workers_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


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
