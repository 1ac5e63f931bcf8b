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
