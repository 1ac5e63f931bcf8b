"""The jobs websocket (media_tasks/consumers.py): a snapshot, then the user's own events only."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from media_tasks.models import Upload
from project.asgi import application
from tests.clients import SAME_ORIGIN
from tests.media_tasks.uploading import image_file, logged_in
from workers import events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_in_tmp")]


async def test_the_jobs_socket_sends_a_snapshot_and_only_the_users_own_events(
    user: Any, other_user: Any, password: str
) -> None:
    def upload_as(who: Any) -> dict[str, Any]:
        client = logged_in(who, password)
        return client.post("/api/uploads/", {"image": image_file("photo.jpg")}).json()["uploads"][0]

    mine = await sync_to_async(upload_as)(user)
    theirs = await sync_to_async(upload_as)(other_user)
    cookie = await sync_to_async(lambda: logged_in(user, password).cookies["sessionid"].value)()
    communicator = WebsocketCommunicator(
        application,
        "/ws/jobs/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={cookie}".encode()),
        ],
    )
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "jobs.snapshot"
    assert {job["upload"] for job in snapshot["jobs"]} == {mine["id"]}
    assert len(snapshot["jobs"]) == 2
    # Events for both users go out; only this user's reach this socket.
    layer = get_channel_layer()
    for upload in (theirs, mine):
        job = await database_sync_to_async(
            lambda pk=upload["id"]: Upload.objects.get(pk=pk).thumbnails_job
        )()
        await layer.group_send(
            events.user_group(job.owner_id),
            {"type": "job.progress", "job": job.pk, "upload": upload["id"], "progress": 50},
        )
    event = await communicator.receive_json_from()
    assert event["upload"] == mine["id"]
    assert await communicator.receive_nothing(0.3)
    await communicator.disconnect()


async def test_an_anonymous_jobs_socket_is_closed_with_4401() -> None:
    communicator = WebsocketCommunicator(
        application,
        "/ws/jobs/",
        headers=[*SAME_ORIGIN],
    )
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 4401}
