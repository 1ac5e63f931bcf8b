"""The uploads' tasks (media_tasks/tasks.py): upload.ready once both jobs of an upload succeeded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from tests.jobs import run_worker_until
from tests.media_tasks.uploading import image_file, logged_in
from workers import events
from workers.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


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
