"""workers/watchdog.py: a job running longer than a tick is announced, one past its time limit
interrupted (its thread abandoned if it does not stop), an overlong batch settled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import override_settings

from tests import tasks
from tests.jobs import new_worker, receive_all, run_worker_until, until
from workers import events, watchdog
from workers.backends import enqueue_for
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_job_longer_than_a_tick_says_it_runs_and_every_job_ends_with_its_outcome(
    user: Any,
) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)

    def enqueue() -> tuple[int, int]:
        with enqueue_for(owner=user):
            return int(tasks.trivial.enqueue().id), int(tasks.sleepy.enqueue(0.4).id)

    quick, slow = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=slow).status == "succeeded")
    received = await receive_all(listener)
    by_job = {job: [e for e in received if e["job"] == job] for job in (quick, slow)}
    assert [e["type"] for e in by_job[slow]] == ["job.progress", "job.done"]
    assert by_job[slow][0]["status"] == "running"
    assert by_job[quick][-1]["type"] == "job.done"
    assert len(by_job[quick]) <= 2


async def test_a_time_limit_interrupts_python_code_and_the_worker_goes_on() -> None:
    slow = tasks.sleepy.using(time_limit=0.5)
    slow_id = int((await database_sync_to_async(slow.enqueue)(30)).id)
    next_id = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)
    await run_worker_until(lambda: Job.objects.get(pk=next_id).status == "succeeded")
    job = await database_sync_to_async(Job.objects.get)(pk=slow_id)
    assert job.status == "failed"
    assert job.error == "took longer than its time limit of 0.5 s"
    assert job.error_class == "workers.exceptions.TimeLimitExceeded"


async def test_a_task_stuck_past_its_time_limit_fails_and_the_channel_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(watchdog, "UNWIND_GRACE", 0.5)
    stuck = tasks.sleeps_in_c.using(time_limit=0.3)

    marks = tmp_path / "marks"

    def enqueue() -> tuple[int, int]:
        return int(stuck.enqueue(3, str(marks)).id), int(tasks.trivial.enqueue().id)

    stuck_id, next_id = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=next_id).status == "succeeded")
    # Before the stuck call returned: the channel got a new thread.
    assert not (marks / "sleeps_in_c-returned").exists()
    job = await database_sync_to_async(Job.objects.get)(pk=stuck_id)
    assert (job.status, job.error) == ("failed", "took longer than its time limit of 0.3 s")


async def test_a_long_job_in_a_batch_frees_the_jobs_behind_it_for_another_worker() -> None:
    def enqueue() -> tuple[list[int], int, list[int]]:
        before = [int(tasks.trivial.using(priority=2).enqueue().id) for _ in range(2)]
        slow = int(tasks.sleepy.using(priority=1).enqueue(2).id)
        after = [int(tasks.trivial.enqueue().id) for _ in range(3)]
        return before, slow, after

    before, slow, after = await database_sync_to_async(enqueue)()
    first = new_worker()
    # As if it had just run many quick jobs: it claims the six in one batch.
    first.drains["compute"].duration = 0.0001
    worker, task = first, asyncio.ensure_future(first.arun())
    second_worker = second_task = None
    try:
        # The window passes while the slow job runs: what ran is recorded, the rest is free.
        await until(lambda: Job.objects.filter(pk__in=before, status="succeeded").count() == 2)
        await until(lambda: Job.objects.filter(pk__in=after, status="queued").count() == 3)
        assert (await database_sync_to_async(Job.objects.get)(pk=slow)).status == "running"
        second = second_worker = new_worker()
        second_task = asyncio.ensure_future(second.arun())
        await until(lambda: Job.objects.filter(pk__in=after, status="succeeded").count() == 3)
        assert (await database_sync_to_async(Job.objects.get)(pk=slow)).status == "running"
        for job_id in after:
            job = await database_sync_to_async(Job.objects.get)(pk=job_id)
            assert job.worker_id == second.worker_id
            # Handed back unstarted: the first worker is not among the job's workers.
            assert job.worker_ids == [second.worker_id]
            assert job.attempts == 1
        await until(lambda: Job.objects.get(pk=slow).status == "succeeded")
    finally:
        for each, each_task in ((worker, task), (second_worker, second_task)):
            if each is not None and each_task is not None:
                each.request_stop()
                await asyncio.wait_for(each_task, 15)


def heartbeats_every(seconds: float) -> Any:
    """Settings under which a worker made inside touches its running job's row that often."""
    return override_settings(JOBS={**settings.JOBS, "HEARTBEAT_INTERVAL": seconds})


async def test_the_watchdog_touches_the_heartbeat_of_a_running_job() -> None:
    job_id = int((await database_sync_to_async(tasks.sleepy.enqueue)(1.0)).id)

    def beating() -> bool:
        job = Job.objects.get(pk=job_id)
        # A claim writes started_at and heartbeat_at alike; only a heartbeat moves the second.
        return job.status == "running" and job.heartbeat_at > job.started_at

    with heartbeats_every(0.1):
        await run_worker_until(beating, timeout=10)
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert (job.status, job.result) == ("succeeded", "woke")


async def test_a_job_taken_from_its_worker_is_stopped_at_its_next_heartbeat() -> None:
    def enqueue() -> tuple[int, int]:
        return int(tasks.sleepy.using(priority=1).enqueue(30).id), int(tasks.trivial.enqueue().id)

    taken, next_id = await database_sync_to_async(enqueue)()
    with heartbeats_every(0.1):
        worker = new_worker()
    running = asyncio.ensure_future(worker.arun())
    try:
        await until(lambda: Job.objects.get(pk=taken).status == "running")
        # As the sweep would, had it taken this worker for dead and handed the job on.
        await database_sync_to_async(Job.objects.filter(pk=taken).update)(worker_id="successor")
        # The channel goes on long before the taken job's 30 s are up.
        await until(lambda: Job.objects.get(pk=next_id).status == "succeeded", timeout=10)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)
    job = await database_sync_to_async(Job.objects.get)(pk=taken)
    # The worker that lost it wrote nothing more.
    assert (job.status, job.worker_id, job.result, job.error) == ("running", "successor", None, "")
