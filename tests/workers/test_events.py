"""workers/events.py: a job's events (with its meta), their groups, and the per-worker sender."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from tests import tasks
from tests.jobs import receive_all, run_worker_until
from workers import events
from workers.backends import enqueue_for
from workers.events import EventSender, groups_with_members
from workers.models import Job
from workers.sender import call_from_sync

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_worker_runs_jobs_and_sends_ordered_events_to_the_owner(user: Any) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)

    def enqueue() -> int:
        with enqueue_for(owner=user, upload=3):
            return int(tasks.count_up.enqueue(3, 0.01).id)

    job_id = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "succeeded")
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(listener), 0.5))
        except TimeoutError:
            break
    assert [e["type"] for e in received][-1] == "job.done"
    assert [e["progress"] for e in received] == sorted(e["progress"] for e in received)
    assert {e["upload"] for e in received} == {3}
    assert {e["job"] for e in received} == {job_id}


async def test_the_event_sender_keeps_only_the_newest_unsent_event_of_a_job() -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    for pk in (101, 102):
        await layer.group_add(events.job_group(pk), listener)
    sender = EventSender(asyncio.get_running_loop())
    first = Job(pk=101, task_path="tests.tasks.count_up", channel="compute", status="running")
    second = Job(pk=102, task_path="tests.tasks.trivial", channel="compute", status="running")
    # Published before the sender's loop gets a turn: all of them wait together.
    for percent in (10, 50, 90):
        first.progress = percent
        sender.publish(first, events.JOB_PROGRESS)
    sender.publish(second, events.JOB_PROGRESS)
    first.status, first.progress = "succeeded", 100
    sender.publish(first, events.JOB_DONE)
    await sender.flush(timeout=5)
    received = await receive_all(listener)
    # In the order of each job's newest event.
    assert [(e["job"], e["type"], e["progress"]) for e in received] == [
        (102, "job.progress", 0),
        (101, "job.done", 100),
    ]


async def test_events_skip_only_the_groups_that_nobody_joined() -> None:
    layer = get_channel_layer()
    watcher, leaver = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(events.job_group(201), watcher)
    await layer.group_add(events.job_group(202), leaver)
    await layer.group_discard(events.job_group(202), leaver)
    wanted = {events.job_group(pk) for pk in (201, 202, 203)}
    listened = await groups_with_members(layer, wanted)
    if settings.REDIS_URL:
        assert listened == {events.job_group(201)}
    else:
        assert listened == wanted  # other layers are not asked: every group gets its events
    # The sender sends to the group with a member, and nothing fails for the others.
    sender = EventSender(asyncio.get_running_loop())
    for pk in (201, 202, 203):
        sender.publish(Job(pk=pk, task_path="tests.tasks.trivial", status="succeeded"), "job.done")
    await sender.flush(timeout=5)
    assert [event["job"] for event in await receive_all(watcher)] == [201]
    assert await receive_all(leaver, quiet=0.1) == []


# An app's meta that names every key of the runtime's own events.
CLASHING_META = {
    "type": "app.type",
    "job": -1,
    "task": "app_task",
    "channel": "app-channel",
    "status": "hacked",
    "progress": 55,
    "message": "from the app",
    "error": "from the app",
}


def test_a_jobs_meta_rides_on_its_events_and_never_overwrites_the_runtimes_keys(
    user: Any,
) -> None:
    with enqueue_for(owner=user, upload=7, **CLASHING_META):
        job = Job.objects.get(pk=tasks.trivial.enqueue().id)
    assert job.meta == {"upload": 7, **CLASHING_META}
    (job,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    assert job.set_progress(30, "step 1")
    assert job.set_failed(error="RuntimeError: boom", retry=False)
    for event_type in (events.JOB_PROGRESS, events.JOB_DONE, events.JOB_FAILED):
        assert events.job_event(job, event_type) == {
            "upload": 7,
            "type": event_type,
            "job": job.pk,
            "task": "trivial",
            "channel": "compute",
            "status": "failed",
            "progress": 30,
            "message": "step 1",
            # What its owner may read of the failure (Job.reason), not the meta's "error".
            "error": job.reason,
        }
    assert job.reason.startswith("processing failed because of an unexpected error")


async def test_the_events_a_worker_sends_carry_the_meta_under_the_runtimes_keys(
    user: Any,
) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)

    def enqueue() -> int:
        meta = {key: CLASHING_META[key] for key in ("type", "job", "status", "progress")}
        with enqueue_for(owner=user, upload=3, **meta):
            return int(tasks.count_up.enqueue(2, 0.01).id)

    job_id = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "succeeded")
    received = await receive_all(listener)
    assert received, "the owner heard nothing"
    assert {(e["job"], e["upload"], e["channel"]) for e in received} == {(job_id, 3, "compute")}
    assert {e["type"] for e in received} <= {"job.progress", "job.done"}
    assert {e["status"] for e in received} <= {"running", "succeeded"}
    assert (received[-1]["type"], received[-1]["status"], received[-1]["progress"]) == (
        "job.done",
        "succeeded",
        100,
    )


async def test_a_jobs_events_go_to_its_own_group_and_its_owners_only(
    user: Any, other_user: Any
) -> None:
    layer = get_channel_layer()
    mine, theirs, watcher = [await layer.new_channel() for _ in range(3)]

    def enqueue() -> tuple[Job, Job]:
        with enqueue_for(owner=user):
            owned = Job.objects.get(pk=tasks.trivial.enqueue().id)
        return owned, Job.objects.get(pk=tasks.trivial.enqueue().id)

    owned, ownerless = await database_sync_to_async(enqueue)()
    await layer.group_add(events.user_group(user.pk), mine)
    await layer.group_add(events.user_group(other_user.pk), theirs)
    for job in (owned, ownerless):
        await layer.group_add(events.job_group(job.pk), watcher)
    for job in (owned, ownerless):
        await database_sync_to_async(events.broadcast)(job, events.JOB_PROGRESS)
    assert [e["job"] for e in await receive_all(mine, quiet=0.2)] == [owned.pk]
    assert [e["job"] for e in await receive_all(watcher, quiet=0.2)] == [owned.pk, ownerless.pk]
    assert await receive_all(theirs, quiet=0.2) == []


@pytest.mark.redis
def test_job_events_from_sync_code_reuse_the_process_s_redis_connections(user: Any) -> None:
    # A cancel, or a chain's dependents failing in a worker's thread, broadcasts from sync code.
    import redis

    layer = get_channel_layer()
    listener = call_from_sync(layer.new_channel)
    with enqueue_for(owner=user):
        job = Job.objects.get(pk=tasks.trivial.enqueue().id)
    call_from_sync(layer.group_add, events.job_group(job.pk), listener)
    watcher = redis.Redis.from_url(settings.REDIS_URL)
    connections_before = watcher.info("stats")["total_connections_received"]
    for _ in range(20):
        events.broadcast(job, events.JOB_PROGRESS)
    opened = watcher.info("stats")["total_connections_received"] - connections_before
    watcher.close()
    assert [call_from_sync(layer.receive, listener)["job"] for _ in range(20)] == [job.pk] * 20
    # async_to_sync would have started a loop, and opened a connection, for each of the 40
    # sends (the job's group and its owner's).
    assert opened <= 2
