"""workers/attempt.py: one attempt of one job: the task called, progress reported, a failure
recorded with its reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from tests import tasks
from tests.jobs import receive_all, run_worker_until
from workers import events
from workers.backends import enqueue_for
from workers.enqueue import job_create
from workers.models import Job
from workers.services import job_cancel

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_cancelled_running_job_stops_at_its_next_progress_report() -> None:
    job_id = int((await database_sync_to_async(tasks.count_up.enqueue)(200, 0.02)).id)

    async def cancel_when_running() -> None:
        while (job := await database_sync_to_async(Job.objects.get)(pk=job_id)).status != "running":
            await asyncio.sleep(0.02)
        await database_sync_to_async(job_cancel)(job=job)

    canceller = asyncio.ensure_future(cancel_when_running())
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "cancelled")
    await canceller
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert job.status == "cancelled"
    assert job.progress < 100


async def test_a_task_returning_something_that_is_not_json_fails_clearly() -> None:
    job_id = int((await database_sync_to_async(tasks.returns_a_set.enqueue)()).id)
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "failed")
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert job.error.startswith("returned a value that is not JSON")
    assert job.attempts == 1


async def owners_events(user: Any) -> tuple[Any, str]:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)
    return layer, listener


async def test_a_task_that_raises_is_retried_with_its_error_class_and_traceback(
    user: Any,
) -> None:
    _, listener = await owners_events(user)

    def enqueue() -> int:
        with enqueue_for(owner=user):
            return int(tasks.always_fails.using(max_attempts=2).enqueue("the disk is on fire").id)

    job_id = await database_sync_to_async(enqueue)()
    # Its first attempt failed and is recorded (attempts is 1 from the claim on).
    await run_worker_until(
        lambda: (
            Job.objects.filter(pk=job_id, attempts=1, status="queued").exclude(error="").exists()
        )
    )
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert (job.status, job.worker_id, job.finished_at) == ("queued", "", None)
    assert (job.error, job.error_class) == (
        "RuntimeError: the disk is on fire",
        "builtins.RuntimeError",
    )
    assert job.traceback.startswith("Traceback (most recent call last):")
    assert job.traceback.rstrip().endswith("RuntimeError: the disk is on fire")
    # Not again at once: after its backoff.
    assert job.run_after > job.started_at
    received = await receive_all(listener)
    assert (received[-1]["type"], received[-1]["status"]) == ("job.progress", "queued")
    assert "error" not in received[-1]


async def test_a_permanent_failure_fails_at_once_and_tells_the_owner_why(user: Any) -> None:
    _, listener = await owners_events(user)

    def enqueue() -> int:
        with enqueue_for(owner=user):
            return int(tasks.bad_input.enqueue("that is not an image").id)

    job_id = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "failed")
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert (job.attempts, job.max_attempts) == (1, 3)
    assert (job.error, job.error_class) == (
        "that is not an image",
        "workers.exceptions.PermanentFailure",
    )
    assert job.finished_at is not None
    received = await receive_all(listener)
    assert [(e["type"], e["status"], e.get("error")) for e in received][-1] == (
        "job.failed",
        "failed",
        "that is not an image",
    )


async def test_a_job_whose_task_does_not_import_fails_for_good() -> None:
    def enqueue() -> int:
        job = job_create(
            task_path="tests.tasks.no_such_task",
            channel="compute",
            args=[],
            kwargs={},
            max_attempts=3,
            time_limit=10,
        )
        return int(job.pk)

    job_id = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "failed")
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert job.attempts == 1
    assert job.error.startswith("unknown task 'tests.tasks.no_such_task'")
    assert job.error_class == "workers.exceptions.PermanentFailure"
