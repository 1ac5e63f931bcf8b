"""Pictures in chat: a chat.picture frame sends one of the sender's uploads, real workers
process it (thumbnails and analysis) while every member sees its progress, its outcome is a
change in the room's sequence (replayed with `?since=`), and only the room's members fetch
its renditions. Deleting the message, or the room's retention, deletes the picture."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone

from chat.models import Message, MessageEvent
from chat.publishing import messages_publish, messages_sequence
from chat.retention import messages_expire
from chat.selectors import pictures_of
from chat.services import (
    message_delete,
    message_post,
    picture_moved,
    room_create,
    room_get_or_create,
    room_invite,
)
from media_tasks.models import Upload
from media_tasks.services import upload_create
from tests.chat.conftest import entered, frames_until, is_message, messages_in, open_chat
from tests.chat.test_consumers import posted
from tests.jobs import new_worker, run_worker_until
from tests.media_tasks.conftest import media_in_tmp  # noqa: F401
from tests.media_tasks.uploading import finished, image_file, logged_in, stored_files
from workers.models import Job

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("media_in_tmp"),
]


def uploaded_sync(owner: Any, name: str = "cat.png") -> int:
    """One of the owner's uploads, accepted by the uploads app (its jobs queued)."""
    return upload_create(owner=owner, files=[image_file(name)])[0].pk


uploaded = database_sync_to_async(uploaded_sync)


def picture_is(status: str) -> Any:
    return lambda frame: (
        frame["type"] == "chat.update"
        and frame["action"] == "picture"
        and frame["message"]["picture"]["status"] == status
    )


async def test_a_picture_is_processed_by_real_workers_with_progress_for_every_member(
    chat_worker: Any, user: Any, other_user: Any, password: str
) -> None:
    alice = await entered("/ws/chat/general/", user, password)
    bob = await entered("/ws/chat/general/", other_user, password)
    upload_id = await uploaded(user)
    await alice.send_json_to(
        {"type": "chat.picture", "upload": upload_id, "body": "look", "client_id": "pic-1"}
    )
    message = messages_in(await frames_until(bob, is_message("look")))[-1]
    # At once, before any worker took it: a placeholder with nothing to show yet.
    picture = message["picture"]
    assert (picture["upload"], picture["status"], picture["thumbnail"]) == (upload_id, "queued", "")
    upload = await database_sync_to_async(Upload.objects.get)(pk=upload_id)
    assert (picture["width"], picture["height"]) == (upload.width, upload.height)
    assert len(picture["jobs"]) == 2

    # The image workers start only now: the room's hub follows the upload's jobs already.
    workers = new_worker(["thumbnails", "compute"])
    running = asyncio.ensure_future(workers.arun())
    try:
        frames = await frames_until(bob, picture_is("done"), timeout=60)
    finally:
        workers.request_stop()
        await asyncio.wait_for(running, 15)
    progress = [f for f in frames if f["type"] == "chat.progress"]
    assert progress
    assert {f["upload"] for f in progress} == {upload_id}
    assert {f["job"] for f in progress} <= set(picture["jobs"])
    assert any(0 < f["progress"] < 100 for f in progress)
    statuses = [f["message"]["picture"]["status"] for f in frames if f["type"] == "chat.update"]
    # A change goes out with the message as it is when it is broadcast: when both jobs end
    # before the broadcast of "processing" runs, the page's next news is "done".
    assert statuses in (["processing", "done"], ["done"])
    done = frames[-1]["message"]["picture"]
    assert done["thumbnail"].startswith(f"/chat/general/pictures/{upload_id}/")
    assert done["renditions"]
    assert done["thumbhash"]
    # The sender's page gets the same.
    await frames_until(alice, picture_is("done"))

    # Bob comes back having seen the message: its picture's changes come with their seqs,
    # each with the message as it is now (as an edit's does).
    await bob.disconnect()
    back = await open_chat(f"/ws/chat/general/?since={message['seq']}", other_user, password)
    replay = await back.receive_json_from(5)
    assert replay["messages"] == []
    assert [(u["action"], u["message"]["picture"]["status"]) for u in replay["updates"]] == [
        ("picture", "done"),
        ("picture", "done"),
    ]
    assert [u["seq"] for u in replay["updates"]] == [message["seq"] + 1, message["seq"] + 2]

    # The thumbnail itself, to a member.
    client = await database_sync_to_async(logged_in)(other_user, password)
    response = await database_sync_to_async(client.get)(done["thumbnail"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/")
    assert response["Cache-Control"] == "private, no-store"
    for communicator in (alice, back):
        await communicator.disconnect()


async def test_a_picture_that_fails_shows_its_reason(
    chat_worker: Any, user: Any, other_user: Any, password: str, settings: Any
) -> None:
    bob = await entered("/ws/chat/general/", other_user, password)
    alice = await entered("/ws/chat/general/", user, password)
    upload_id = await uploaded(user)
    # The original goes missing before a worker reads it.
    await database_sync_to_async(
        lambda: Upload.objects.get(pk=upload_id).original.delete(save=False)
    )()
    await alice.send_json_to({"type": "chat.picture", "upload": upload_id, "client_id": "p2"})
    # The message first (as in the test above): its failure then comes as a change of it.
    await frames_until(bob, lambda frame: frame["type"] == "chat.message", timeout=30)
    await run_worker_until(
        lambda: finished(upload_id), channels=["thumbnails", "compute"], timeout=60
    )
    failed = (await frames_until(bob, picture_is("failed"), timeout=30))[-1]
    assert "missing from storage" in failed["message"]["picture"]["error"]
    assert failed["message"]["body"] == ""
    for communicator in (alice, bob):
        await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        ({"type": "chat.picture"}, "bad_frame", "needs 'upload'"),
        ({"type": "chat.picture", "upload": "1"}, "bad_frame", "'upload' must be"),
        ({"type": "chat.picture", "upload": True}, "bad_frame", "'upload' must be"),
        ({"type": "chat.picture", "upload": 999}, "not_found", "no upload 999"),
        ({"type": "chat.picture", "upload": "bob's"}, "not_found", "You have no upload"),
        ({"type": "chat.picture", "upload": "sent"}, "forbidden", "in a message already"),
        (
            {"type": "chat.picture", "upload": "mine", "body": "x" * 2001},
            "invalid",
            "2001 characters",
        ),
        ({"type": "chat.picture", "upload": "mine", "body": 7}, "invalid", "a string of text"),
        (
            {"type": "chat.picture", "upload": "mine", "client_id": "a b"},
            "invalid",
            "client_id",
        ),
    ],
)
async def test_bad_picture_frames_get_a_chat_error_and_the_socket_stays(
    chat_worker: Any,
    user: Any,
    other_user: Any,
    password: str,
    frame: dict[str, Any],
    code: str,
    reason: str,
) -> None:
    communicator = await entered("/ws/chat/general/", user, password)
    ids = {"bob's": await uploaded(other_user), "mine": await uploaded(user)}
    ids["sent"] = await uploaded(user)
    await communicator.send_json_to(
        {"type": "chat.picture", "upload": ids["sent"], "client_id": "first"}
    )
    await frames_until(communicator, lambda f: f["type"] == "chat.message")
    if frame.get("upload") in ids:
        frame = {**frame, "upload": ids[frame["upload"]]}
    await communicator.send_json_to(frame)
    error = (await frames_until(communicator, lambda f: f["type"] == "chat.error"))[-1]
    assert error["code"] == code
    assert reason in error["error"]
    await posted(communicator, "still here")
    assert await database_sync_to_async(Message.objects.count)() == 2
    await communicator.disconnect()


def finish_processing(upload_id: int) -> None:
    asyncio.run(
        run_worker_until(
            lambda: finished(upload_id), channels=["thumbnails", "compute"], timeout=60
        )
    )


def test_only_members_of_a_private_room_fetch_its_pictures(
    user: Any, other_user: Any, password: str, settings: Any
) -> None:
    carol = get_user_model().objects.create_user(username="carol", password=password)
    room = room_create(creator=user, private=True, title="Secret")
    room_invite(room=room, by=user, username=other_user.username)
    general = room_get_or_create(name="general")
    upload_id = uploaded_sync(user)
    message = message_post(room=room, author=user, body="", picture=upload_id).message
    messages_sequence(room_id=room.pk)
    messages_publish(room_id=room.pk)
    finish_processing(upload_id)
    picture = pictures_of([upload_id], room=room)[upload_id]
    urls = [r["url"] for r in picture["renditions"]]
    assert urls
    assert all(u.startswith(f"/chat/{room.name}/pictures/{upload_id}/") for u in urls)

    bob, carols = logged_in(other_user, password), logged_in(carol, password)
    carols.get(f"/chat/{general.name}/")  # carol is a member of another room
    for url in urls:
        assert bob.get(url).status_code == 200
        # A non-member gets the answer of a room that does not exist, whatever the URL.
        refused = carols.get(url)
        assert refused.status_code == 404
        assert b"no such room" in refused.content
        elsewhere = url.replace(f"/chat/{room.name}/", f"/chat/{general.name}/")
        assert carols.get(elsewhere).status_code == 404
    # Nor is the original served to members: it keeps the camera's metadata.
    assert bob.get(f"/chat/{room.name}/pictures/{upload_id}/original").status_code == 404

    # Deleting the message deletes the picture, its files too.
    message_delete(room=room, user=user, message_id=message.pk)
    assert not Upload.objects.filter(pk=upload_id).exists()
    assert bob.get(urls[0]).status_code == 404
    assert stored_files(settings) == []


def test_retention_deletes_old_messages_with_their_pictures(user: Any, settings: Any) -> None:
    room = room_get_or_create(name="general")
    room.retention_days = 1
    room.save()
    old_upload, new_upload = uploaded_sync(user, "old.png"), uploaded_sync(user, "new.png")
    old = message_post(room=room, author=user, body="", picture=old_upload).message
    message_post(room=room, author=user, body="fresh", picture=new_upload)
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    finish_processing(new_upload)

    assert messages_expire() == 1
    assert list(Upload.objects.values_list("pk", flat=True)) == [new_upload]
    key = Upload.objects.get(pk=new_upload).key.hex
    files = stored_files(settings)
    assert files
    assert all(key in Path(name).as_posix() for name in files)


def test_a_picture_s_status_is_recorded_once_per_change(user: Any) -> None:
    room = room_get_or_create(name="general")
    upload_id = uploaded_sync(user)
    message = message_post(room=room, author=user, body="", picture=upload_id).message
    thumbnails, analysis = Upload.objects.get(pk=upload_id).jobs()
    picture_moved(upload_id=upload_id)
    assert not MessageEvent.objects.exists()  # still queued, as posted

    Job.objects.filter(pk=thumbnails.pk).update(status=Job.Status.RUNNING)
    picture_moved(upload_id=upload_id)
    Job.objects.filter(pk=analysis.pk).update(status=Job.Status.RUNNING)
    picture_moved(upload_id=upload_id)
    Job.objects.filter(pk__in=[thumbnails.pk, analysis.pk]).update(status=Job.Status.SUCCEEDED)
    picture_moved(upload_id=upload_id)
    picture_moved(upload_id=upload_id)
    assert list(MessageEvent.objects.values_list("message", "action")) == [
        (message.pk, "picture"),
        (message.pk, "picture"),
    ]
    assert Message.objects.get(pk=message.pk).picture_status == "done"
