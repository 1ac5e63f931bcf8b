"""The bytes of resumable uploads while they wait (media_tasks/partials.py): an upload paused
past its expiry is deleted with its bytes by the recurring clean-up, a live one is kept."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from media_tasks.models import PartialUpload
from media_tasks.tasks import partial_uploads_expire
from tests.jobs import run_worker_until
from tests.media_tasks.test_tus import TUS, create, patch
from tests.media_tasks.uploading import logged_in
from workers.models import Job
from workers.schedules import recurring

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


def test_an_expired_partial_upload_is_cleaned_by_the_recurring_job_and_a_live_one_kept(
    user: Any, password: str, settings: Any
) -> None:
    client = logged_in(user, password)
    paused = create(client, 1000)["Location"]
    live = create(client, 1000)["Location"]
    for url in (paused, live):
        assert patch(client, url, 0, b"x" * 400).status_code == 204
    assert len(list(settings.UPLOAD_PARTIALS_ROOT.iterdir())) == 2
    # The paused one's last chunk came longer ago than UPLOAD_RESUMABLE_EXPIRE.
    stale = PartialUpload.objects.get(key=paused.rsplit("/", 1)[1])
    PartialUpload.objects.filter(pk=stale.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client.head(paused, headers=TUS).status_code == 410

    (schedule,) = [item for item in recurring() if item.name == "partial-uploads"]
    assert schedule.task == "media_tasks.tasks.partial_uploads_expire"
    job_id = int(partial_uploads_expire.enqueue().id)
    asyncio.run(
        run_worker_until(
            lambda: Job.objects.filter(pk=job_id, status="succeeded").exists(),
            channels=["compute"],
        )
    )
    assert Job.objects.get(pk=job_id).result == {"deleted": 1}
    assert client.head(paused, headers=TUS).status_code == 404
    assert not stale.path.exists()
    assert client.head(live, headers=TUS)["Upload-Offset"] == "400"
    assert [p.name for p in settings.UPLOAD_PARTIALS_ROOT.iterdir()] == [
        live.rsplit("/", 1)[1].replace("-", "")
    ]
