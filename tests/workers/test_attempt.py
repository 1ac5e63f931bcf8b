"""workers/attempt.py: one attempt of one job: the task called, progress reported, a failure
recorded with its reason."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.tasks import TaskResultStatus, default_task_backend
from django.test import override_settings

from tests import tasks
from tests.jobs import new_worker, receive_all, run_worker_until, until
from workers import events
from workers.backends import enqueue_for
from workers.enqueue import job_create
from workers.models import Job
from workers.services import job_cancel
from workers.worker import Worker

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


# Django's Tasks contract: whatever a task raises or returns is its job's outcome, and the
# worker goes on.


def enqueue_path(task_path: str) -> int:
    return int(
        job_create(
            task_path=task_path,
            channel="compute",
            args=[],
            kwargs={},
            max_attempts=3,
            time_limit=10,
        ).pk
    )


@pytest.mark.parametrize(
    ("task", "exception", "message"),
    [
        (tasks.failing_task_value_error, ValueError, "This Task failed due to ValueError"),
        (tasks.failing_task_system_exit, SystemExit, "This Task failed due to SystemExit"),
        (
            tasks.failing_task_keyboard_interrupt,
            KeyboardInterrupt,
            "This Task failed due to KeyboardInterrupt",
        ),
    ],
    ids=["ValueError", "SystemExit", "KeyboardInterrupt"],
)
async def test_what_a_task_raises_is_its_result_and_the_worker_goes_on(
    task: Any, exception: type[BaseException], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    def enqueue() -> tuple[str, str]:
        failing = task.using(max_attempts=1).enqueue()
        return failing.id, tasks.calculate_meaning_of_life.enqueue().id

    failing, after = await database_sync_to_async(enqueue)()
    with caplog.at_level(logging.ERROR, logger="django.tasks"):
        await run_worker_until(
            lambda: (
                Job.objects.filter(
                    pk__in=[failing, after], status__in=["failed", "succeeded"]
                ).count()
                == 2
            )
        )
    result = await default_task_backend.aget_result(failing)
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert result.is_finished
    assert result.started_at is not None
    assert result.finished_at is not None
    assert result.enqueued_at is not None
    assert result.enqueued_at <= result.started_at <= result.finished_at
    (error,) = result.errors
    assert error.exception_class is exception
    assert error.traceback.endswith(f"{exception.__name__}: {message}\n"), error.traceback
    (logged,) = [
        r for r in caplog.records if r.name == "django.tasks" and failing in r.getMessage()
    ]
    assert "state=FAILED" in logged.getMessage()
    # The same worker ran the next job.
    assert (await default_task_backend.aget_result(after)).return_value == 42


async def test_system_exit_and_exit_fail_at_once_rather_than_retry() -> None:
    result = await database_sync_to_async(tasks.exit_task.enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=result.id).status == "failed")
    job = await database_sync_to_async(Job.objects.get)(pk=result.id)
    assert (job.attempts, job.error_class) == (1, "builtins.SystemExit")


async def test_a_complex_exception_is_recorded_with_its_traceback() -> None:
    result = await database_sync_to_async(tasks.complex_exception.using(max_attempts=1).enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=result.id).status == "failed")
    fetched = await default_task_backend.aget_result(result.id)
    assert fetched._return_value is None
    assert fetched.errors[0].exception_class is ValueError
    assert 'ValueError(ValueError("This task failed"))' in fetched.errors[0].traceback


async def test_a_return_value_that_is_not_json_fails_as_the_type_error_raised() -> None:
    result = await database_sync_to_async(tasks.complex_return_value.enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=result.id).status == "failed")
    fetched = await default_task_backend.aget_result(result.id)
    assert fetched.status == TaskResultStatus.FAILED
    assert fetched._return_value is None
    (error,) = fetched.errors
    assert error.exception_class is TypeError
    assert "Unsupported type" in error.traceback
    assert fetched.started_at is not None
    assert fetched.finished_at is not None


async def test_a_nan_return_value_fails_its_job_alone_not_its_batch() -> None:
    def enqueue() -> list[str]:
        return [
            tasks.calculate_meaning_of_life.enqueue().id,
            tasks.returns_nan.enqueue().id,
            tasks.calculate_meaning_of_life.enqueue().id,
        ]

    before, nan, after = await database_sync_to_async(enqueue)()

    class Batches(Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.drains["compute"].duration = 0.0001  # the three in one batch

    await run_worker_until(
        lambda: (
            Job.objects.filter(
                pk__in=[before, nan, after], status__in=["failed", "succeeded"]
            ).count()
            == 3
        ),
        worker_class=Batches,
    )
    statuses = dict(
        await database_sync_to_async(
            lambda: list(
                Job.objects.filter(pk__in=[before, nan, after]).values_list("pk", "status")
            )
        )()
    )
    assert statuses == {int(before): "succeeded", int(nan): "failed", int(after): "succeeded"}
    fetched = await default_task_backend.aget_result(nan)
    assert fetched.errors[0].exception_class is ValueError
    assert "not JSON compliant" in fetched.errors[0].traceback


@pytest.mark.parametrize(
    "task_path",
    ["tests.tasks.not_a_task", "subprocess.check_output", "tests.tasks.no_such_thing"],
    ids=["a plain function", "not this project's", "missing"],
)
async def test_a_task_path_that_names_no_task_fails_at_once_and_the_channel_goes_on(
    task_path: str,
) -> None:
    def enqueue() -> tuple[int, str]:
        return enqueue_path(task_path), tasks.calculate_meaning_of_life.enqueue().id

    bad, good = await database_sync_to_async(enqueue)()
    # Well before any recovery (JOBS_STALE_AFTER): the consumer did not crash.
    await run_worker_until(
        lambda: (
            Job.objects.filter(pk__in=[bad, good], status__in=["failed", "succeeded"]).count() == 2
        ),
        timeout=10,
    )
    job = await database_sync_to_async(Job.objects.get)(pk=bad)
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.error.startswith(f"unknown task {task_path!r}")
    assert (await database_sync_to_async(Job.objects.get)(pk=good)).status == "succeeded"


async def test_a_cancelled_task_that_checks_its_context_stops_cleanly() -> None:
    job_id = int((await database_sync_to_async(tasks.waits_for_cancel.enqueue)(30)).id)

    async def cancel_when_running() -> None:
        await until(lambda: Job.objects.get(pk=job_id).status == "running")
        await database_sync_to_async(job_cancel)(
            job=await database_sync_to_async(Job.objects.get)(pk=job_id)
        )

    canceller = asyncio.ensure_future(cancel_when_running())
    worker = new_worker()
    running = asyncio.ensure_future(worker.arun())
    try:
        await canceller
        # The task saw the cancel and returned: the channel runs the next job.
        after = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)
        await until(lambda: Job.objects.get(pk=after).status == "succeeded", timeout=10)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    # Cancelled stays cancelled: the task's return after it is not a success.
    assert (job.status, job.result) == ("cancelled", None)


async def test_a_cancelled_task_that_does_not_check_is_interrupted_after_the_grace() -> None:
    job_id = int((await database_sync_to_async(tasks.sleepy.enqueue)(60)).id)

    async def cancel_when_running() -> None:
        await until(lambda: Job.objects.get(pk=job_id).status == "running")
        await database_sync_to_async(job_cancel)(
            job=await database_sync_to_async(Job.objects.get)(pk=job_id)
        )

    canceller = asyncio.ensure_future(cancel_when_running())
    with override_settings(JOBS={**settings.JOBS, "CANCEL_GRACE": 0.5}):
        worker = new_worker()
    running = asyncio.ensure_future(worker.arun())
    try:
        await canceller
        after = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)
        # Long before the task's 60 s: it was interrupted.
        await until(lambda: Job.objects.get(pk=after).status == "succeeded", timeout=15)
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)
    assert (await database_sync_to_async(Job.objects.get)(pk=job_id)).status == "cancelled"
