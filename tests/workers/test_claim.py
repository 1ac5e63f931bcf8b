"""workers/claim.py: a channel's drain claims its ready jobs in batches sized by their recent
durations, runs them on the channel's own thread, and settles each batch (its successes
recorded, what did not start handed back), waking another worker when there may be more."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import receive_all, until
from workers import events
from workers.claim import ChannelDrain
from workers.models import Job
from workers.services import channel_pause, channel_resume
from workers.wakeups import finish_sends

pytestmark = pytest.mark.django_db(transaction=True)


class Drain:
    """A ChannelDrain of worker "w" on `compute`, and the events it published."""

    def __init__(self, stopping: Callable[[], bool] = lambda: False) -> None:
        self.published: list[tuple[int, str]] = []
        self.drain = ChannelDrain(
            "compute",
            worker_id="w",
            publish=lambda job, event_type: self.published.append((job.pk, event_type)),
            stopping=stopping,
            started=lambda: None,
        )


def no_wakeups_waiting() -> None:
    """Take the wake-ups the enqueues sent off the channel."""
    finish_sends()
    asyncio.run(receive_all("compute", quiet=0.2))


def enqueue_all(*made: Callable[[], str]) -> list[int]:
    ids = [int(make()) for make in made]
    no_wakeups_waiting()
    return ids


async def test_a_drain_runs_the_ready_jobs_of_its_channel_until_none_is_left() -> None:
    def enqueue() -> tuple[list[int], int, int]:
        ready = [
            tasks.trivial.enqueue().id,
            tasks.trivial.using(priority=5).enqueue().id,
            tasks.trivial.enqueue().id,
            tasks.trivial.using(priority=1).enqueue().id,
        ]
        later = tasks.trivial.using(run_after=timezone.now() + timedelta(hours=1)).enqueue()
        elsewhere = tasks.trivial.using(queue_name="thumbnails").enqueue()
        return [int(pk) for pk in ready], int(later.id), int(elsewhere.id)

    ready, later, elsewhere = await database_sync_to_async(enqueue)()
    drain = Drain()
    try:
        await drain.drain.drain()
    finally:
        drain.drain.close()
    in_order = [ready[1], ready[3], ready[0], ready[2]]
    assert drain.published == [(pk, events.JOB_DONE) for pk in in_order]
    for pk in ready:
        job = await database_sync_to_async(Job.objects.get)(pk=pk)
        assert (job.status, job.result, job.attempts, job.worker_id) == ("succeeded", "ok", 1, "w")
    assert (await database_sync_to_async(Job.objects.get)(pk=later)).status == "queued"
    assert (await database_sync_to_async(Job.objects.get)(pk=elsewhere)).status == "queued"


def test_a_batch_is_one_job_while_durations_are_unknown_then_what_fits_the_window() -> None:
    with override_settings(JOBS={**settings.JOBS, "BATCH_WINDOW": 1.0, "MAX_BATCH": 8}):
        drain = Drain().drain
    try:
        assert drain.batch_size() == 1  # nothing known yet: it may be slow
        drain.duration = 0.25
        assert drain.batch_size() == 4
        drain.duration = 0.001
        assert drain.batch_size() == 8
        drain.duration = 5.0
        assert drain.batch_size() == 1
    finally:
        drain.close()


async def test_a_full_batch_wakes_another_worker_and_the_last_short_one_does_not() -> None:
    ids = await database_sync_to_async(enqueue_all)(*[lambda: tasks.trivial.enqueue().id] * 3)
    # Batches of two: the first is full (there may be more), the second is not.
    with override_settings(JOBS={**settings.JOBS, "BATCH_WINDOW": 10.0, "MAX_BATCH": 2}):
        drain = Drain()
    drain.drain.duration = 0.001
    try:
        await drain.drain.drain()
    finally:
        drain.drain.close()
    await database_sync_to_async(finish_sends)()
    assert await receive_all("compute", quiet=0.2) == [{"type": events.JOB_WAKEUP, "job": ids[1]}]
    assert drain.published == [(pk, events.JOB_DONE) for pk in ids]


async def test_a_stopping_drain_records_what_ran_and_hands_back_what_did_not_start() -> None:
    stop = threading.Event()
    slow, *behind = await database_sync_to_async(enqueue_all)(
        lambda: tasks.sleepy.using(priority=1).enqueue(0.5).id,
        lambda: tasks.trivial.enqueue().id,
        lambda: tasks.trivial.enqueue().id,
    )
    drain = Drain(stopping=stop.is_set)
    # As if it had just run many quick jobs: it claims the three in one batch.
    drain.drain.duration = 0.0001
    running = asyncio.ensure_future(drain.drain.drain())
    try:
        await until(lambda: Job.objects.get(pk=slow).status == "running")
        assert (
            await database_sync_to_async(
                Job.objects.filter(pk__in=behind, status="running").count
            )()
            == 2
        )
        stop.set()
        await running
    finally:
        drain.drain.close()
    job = await database_sync_to_async(Job.objects.get)(pk=slow)
    assert (job.status, job.result) == ("succeeded", "woke")
    for pk in behind:
        job = await database_sync_to_async(Job.objects.get)(pk=pk)
        assert (job.status, job.attempts, job.worker_id) == ("queued", 0, "")
    assert drain.published == [(slow, events.JOB_DONE)]
    # The jobs handed back get a wake-up, for another worker.
    await database_sync_to_async(finish_sends)()
    assert await receive_all("compute", quiet=0.2) == [
        {"type": events.JOB_WAKEUP, "job": behind[0]}
    ]


async def test_a_closed_drain_closes_its_threads_own_database_connection() -> None:
    job_id = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)
    drain = Drain()
    await drain.drain.drain()
    assert (await database_sync_to_async(Job.objects.get)(pk=job_id)).status == "succeeded"
    thread = drain.drain.thread
    # The drain thread's own connection, as its jobs used it.
    own = await asyncio.wrap_future(thread.submit(lambda: connections[DEFAULT_DB_ALIAS]))
    assert own.connection is not None
    drain.drain.close()
    thread.shutdown(wait=True)
    assert own.connection is None, "the drain thread's connection is still open"


async def test_jobs_of_one_batch_have_their_own_start_and_finish_times() -> None:
    ids = await database_sync_to_async(enqueue_all)(*[lambda: tasks.sleepy.enqueue(0.05).id] * 3)
    drain = Drain()
    drain.drain.duration = 0.0001  # the three in one batch
    try:
        await drain.drain.drain()
    finally:
        drain.drain.close()
    jobs = [await database_sync_to_async(Job.objects.get)(pk=pk) for pk in ids]
    assert len({job.heartbeat_at for job in jobs}) == 1, "not claimed together"
    for job in jobs:
        assert job.started_at == job.last_attempted_at
        assert job.finished_at is not None
        assert job.started_at is not None
        assert (job.finished_at - job.started_at).total_seconds() >= 0.05
    # One after the other: each started after the one before it finished.
    for before, after in itertools.pairwise(jobs):
        assert before.finished_at is not None
        assert after.started_at is not None
        assert after.started_at >= before.finished_at


async def test_a_job_handed_back_unstarted_is_as_before_its_claim() -> None:
    stop = threading.Event()
    slow, behind = await database_sync_to_async(enqueue_all)(
        lambda: tasks.sleepy.using(priority=1).enqueue(0.3).id,
        lambda: tasks.context_attempt.enqueue(1).id,
    )
    drain = Drain(stopping=stop.is_set)
    drain.drain.duration = 0.0001
    running = asyncio.ensure_future(drain.drain.drain())
    try:
        await until(lambda: Job.objects.get(pk=slow).status == "running")
        stop.set()
        await running
    finally:
        drain.drain.close()
    job = await database_sync_to_async(Job.objects.get)(pk=behind)
    assert (job.status, job.attempts, job.worker_ids) == ("queued", 0, [])
    assert (job.started_at, job.last_attempted_at) == (None, None)
    # Its first real run is its attempt 1 (the task checks its context says so).
    again = Drain()
    try:
        await again.drain.drain()
    finally:
        again.drain.close()
    job = await database_sync_to_async(Job.objects.get)(pk=behind)
    assert (job.status, job.result, job.worker_ids) == ("succeeded", 1, ["w"])


async def test_a_paused_channel_is_not_claimed_until_resumed() -> None:
    (job_id,) = await database_sync_to_async(enqueue_all)(lambda: tasks.trivial.enqueue().id)
    await database_sync_to_async(channel_pause)(channel="compute", by="ops")
    drain = Drain()
    try:
        await drain.drain.drain()
        assert (await database_sync_to_async(Job.objects.get)(pk=job_id)).status == "queued"
        await database_sync_to_async(channel_resume)(channel="compute")
        await drain.drain.drain()
    finally:
        drain.drain.close()
    assert (await database_sync_to_async(Job.objects.get)(pk=job_id)).status == "succeeded"
