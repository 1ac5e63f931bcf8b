"""workers/worker.py: the Worker, on the test's own loop and channel layer: listening one
message at a time per channel, a consumer that crashed replaced, the graceful stop.

The worker as a process of its own (`runworker`, SIGTERM, a kill) is in test_end_to_end.py."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import override_settings

from tests import tasks
from tests.jobs import new_worker, receive_all, run_worker_until, until
from workers import events
from workers.models import Job
from workers.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_channel_consumer_that_crashes_is_replaced_and_the_channel_goes_on() -> None:
    crashed = asyncio.Event()

    class CrashesOnce(Worker):
        async def drain(self, channel: str) -> None:
            if not crashed.is_set():
                crashed.set()
                raise RuntimeError("the consumer's first wake-up crashes it")
            await super().drain(channel)

    first = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)

    async def enqueue_after_the_crash() -> int:
        await crashed.wait()
        return int((await database_sync_to_async(tasks.trivial.enqueue)()).id)

    second = asyncio.ensure_future(enqueue_after_the_crash())
    # Well before the sweep would send anything again (JOBS_REDISPATCH_AFTER is 15 s).
    await run_worker_until(
        lambda: (
            second.done()
            and Job.objects.filter(pk__in=[first, second.result()], status="succeeded").count() == 2
        ),
        timeout=5,
        worker_class=CrashesOnce,
    )


async def test_a_busy_worker_leaves_wakeups_in_the_layer_for_another_worker() -> None:
    job_id = int((await database_sync_to_async(tasks.sleepy.enqueue)(1.0)).id)
    worker = new_worker()
    running = asyncio.ensure_future(worker.arun())
    try:
        await until(lambda: Job.objects.get(pk=job_id).status == "running")
        with contextlib.suppress(ChannelFull):  # one may be waiting already: the worker's own
            await get_channel_layer().send("compute", {"type": events.JOB_WAKEUP, "job": 0})
        # Another worker (this test) still finds a wake-up: the busy one did not take it.
        assert await receive_all("compute", quiet=0.5)
        assert (await database_sync_to_async(Job.objects.get)(pk=job_id)).status == "running"
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)


async def test_a_stop_lets_the_running_job_finish_and_takes_no_new_one() -> None:
    def enqueue() -> tuple[int, list[int]]:
        running = int(tasks.count_up.enqueue(10, 0.05).id)
        return running, [int(tasks.trivial.enqueue().id) for _ in range(2)]

    running, waiting = await database_sync_to_async(enqueue)()
    # Running, not only claimed: a claimed job that has not started yet is handed back.
    await run_worker_until(lambda: Job.objects.get(pk=running).progress > 0)
    job = await database_sync_to_async(Job.objects.get)(pk=running)
    assert (job.status, job.progress, job.attempts) == ("succeeded", 100, 1)
    for pk in waiting:
        job = await database_sync_to_async(Job.objects.get)(pk=pk)
        assert (job.status, job.attempts) == ("queued", 0)


async def test_a_stop_past_the_grace_hands_the_running_job_back_uncounted_with_a_wakeup() -> None:
    job_id = int((await database_sync_to_async(tasks.count_up.enqueue)(40, 0.05)).id)
    with override_settings(JOBS={**settings.JOBS, "SHUTDOWN_GRACE": 0.2}):
        await run_worker_until(lambda: Job.objects.get(pk=job_id).progress > 0)
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert (job.status, job.attempts, job.worker_id, job.progress) == ("queued", 0, "", 0)
    # A hand-back clears woken_at; the worker sent a new wake-up after it.
    assert job.woken_at is not None
    (wakeup,) = await receive_all("compute", quiet=0.2)
    assert wakeup == {"type": events.JOB_WAKEUP, "job": job_id}
    # Put back for the next worker, which runs the job from its first attempt.
    await get_channel_layer().send("compute", wakeup)
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "succeeded")
    assert (await database_sync_to_async(Job.objects.get)(pk=job_id)).attempts == 1
