"""workers/backends.py: the Tasks backend (enqueue, get_result), the `task` decorator and
its options, enqueue_for, and Django's task signals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.tasks import TaskResult, TaskResultStatus, default_task_backend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import run_worker_until
from workers.backends import ChannelsBackend, JobTask
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_get_result_reports_status_value_and_errors_from_any_process() -> None:
    result = tasks.trivial.enqueue()
    job = Job.objects.get(pk=result.id)
    job.claim("w1")
    job.set_succeeded("ok")
    fetched = tasks.trivial.get_result(result.id)
    assert fetched.status == TaskResultStatus.SUCCESSFUL
    assert fetched.return_value == "ok"
    assert fetched.worker_ids == ["w1"]
    failed = tasks.bad_input.enqueue("nope")
    job = Job.objects.get(pk=failed.id)
    job.claim("w1")
    job.set_failed(error="nope", error_class="workers.exceptions.PermanentFailure", retry=False)
    fetched = default_task_backend.get_result(failed.id)
    assert fetched.status == TaskResultStatus.FAILED
    assert fetched.errors[0].exception_class_path == "workers.exceptions.PermanentFailure"


@contextmanager
def recording(*signals: Signal) -> Iterator[list[tuple[Signal, Any, TaskResult[Any, Any]]]]:
    """Inside, every send of `signals` is kept, in order: (signal, sender, task_result)."""
    sent: list[tuple[Signal, Any, TaskResult[Any, Any]]] = []
    receivers = []
    for signal in signals:

        def receiver(sender: Any, task_result: Any, signal: Signal = signal, **_: Any) -> None:
            sent.append((signal, sender, task_result))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    try:
        yield sent
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)


def test_the_task_decorators_options_reach_the_job_row() -> None:
    limited = Job.objects.get(pk=tasks.limited.enqueue().id)
    assert (limited.max_attempts, limited.time_limit) == (5, 42)
    # A task without them gets the JOBS setting's defaults.
    plain = Job.objects.get(pk=tasks.trivial.enqueue().id)
    assert (plain.max_attempts, plain.time_limit) == (
        settings.JOBS["DEFAULT_MAX_ATTEMPTS"],
        settings.JOBS["DEFAULT_TIME_LIMIT"],
    )
    assert (plain.max_attempts, plain.time_limit) != (5, 42)


def test_using_gives_a_task_whose_enqueue_writes_its_options() -> None:
    changed = tasks.limited.using(time_limit=7.5, max_attempts=2, priority=4)
    assert isinstance(changed, JobTask)
    job = Job.objects.get(pk=changed.enqueue().id)
    assert (job.time_limit, job.max_attempts, job.priority) == (7.5, 2, 4)
    # The options not given stay the task's own; the task itself is unchanged.
    job = Job.objects.get(pk=tasks.limited.using(priority=1).enqueue().id)
    assert (job.time_limit, job.max_attempts, job.priority) == (42, 5, 1)
    job = Job.objects.get(pk=tasks.limited.enqueue().id)
    assert (job.time_limit, job.max_attempts, job.priority) == (42, 5, 0)


def test_enqueue_sends_task_enqueued_with_the_jobs_result() -> None:
    with recording(task_enqueued) as sent:
        result = tasks.trivial.enqueue(marks="")
    ((signal, sender, task_result),) = sent
    assert (signal, sender) == (task_enqueued, ChannelsBackend)
    assert (task_result.id, task_result.status) == (result.id, TaskResultStatus.READY)
    assert (task_result.task, task_result.kwargs) == (tasks.trivial, {"marks": ""})


async def test_the_worker_sends_task_started_then_task_finished_for_each_job_it_runs() -> None:
    def enqueue() -> tuple[str, str]:
        return tasks.trivial.enqueue().id, tasks.bad_input.enqueue("not an image").id

    with recording(task_started, task_finished) as sent:
        succeeds, fails = await database_sync_to_async(enqueue)()
        await run_worker_until(
            lambda: {r.id for signal, _, r in sent if signal is task_finished} == {succeeds, fails}
        )
    for job_id in (succeeds, fails):
        of_job = [(signal, sender, r) for signal, sender, r in sent if r.id == job_id]
        assert [signal for signal, _, _ in of_job] == [task_started, task_finished]
        assert {sender for _, sender, _ in of_job} == {ChannelsBackend}
        assert of_job[0][2].status == TaskResultStatus.RUNNING
    (finished,) = [r for signal, _, r in sent if signal is task_finished and r.id == succeeds]
    assert (finished.status, finished.return_value) == (TaskResultStatus.SUCCESSFUL, "ok")
    (finished,) = [r for signal, _, r in sent if signal is task_finished and r.id == fails]
    assert finished.status == TaskResultStatus.FAILED
    assert finished.errors[0].exception_class_path == "workers.exceptions.PermanentFailure"


def test_get_result_of_an_unknown_id_raises_task_result_does_not_exist() -> None:
    gone = tasks.trivial.enqueue()
    Job.objects.filter(pk=gone.id).delete()
    for result_id in (gone.id, "not-a-number", ""):
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result_id)


# Django's Tasks contract (Django 6.0's tests/tasks/ and django-tasks' database backend
# tests), against this backend with real workers.


def test_an_enqueued_result_is_ready_unstarted_and_says_so() -> None:
    result = tasks.noop_task.enqueue(1, two=3)
    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert (result.started_at, result.last_attempted_at, result.finished_at) == (None, None, None)
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert result.task == tasks.noop_task
    assert (result.args, result.kwargs, result.attempts, result.errors) == ([1], {"two": 3}, 0, [])


async def test_aenqueue_gives_the_same_ready_result() -> None:
    result = await tasks.noop_task.aenqueue()
    assert (result.status, result.task, result.args, result.kwargs, result.attempts) == (
        TaskResultStatus.READY,
        tasks.noop_task,
        [],
        {},
        0,
    )
    assert await default_task_backend.aget_result(result.id) == result


def test_an_argument_that_is_not_json_is_refused_at_enqueue() -> None:
    with pytest.raises(TypeError, match="Unsupported type"):
        tasks.noop_task.enqueue(datetime.now())
    assert not Job.objects.exists()


def test_get_result_is_the_enqueued_result_with_the_task_as_enqueued() -> None:
    result = tasks.noop_task.enqueue()
    assert default_task_backend.get_result(result.id) == result
    assert tasks.noop_task.get_result(result.id) == result
    # What .using() set comes back too: the result's task is the one enqueued.
    later = timezone.now() + timedelta(hours=1)
    changed = tasks.limited.using(priority=7, queue_name="thumbnails", run_after=later)
    fetched = default_task_backend.get_result(changed.enqueue().id)
    assert fetched.task == changed
    assert (fetched.task.priority, fetched.task.queue_name, fetched.task.run_after) == (
        7,
        "thumbnails",
        later,
    )
    assert fetched.task.time_limit == 42  # the task's own option, kept


def test_a_result_of_another_task_is_a_mismatch() -> None:
    result = tasks.noop_task.enqueue()
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        tasks.calculate_meaning_of_life.get_result(result.id)


def test_a_queue_the_backend_does_not_have_is_refused() -> None:
    with pytest.raises(InvalidTask, match="Queue 'unknown_queue' is not valid for backend"):
        tasks.noop_task.using(queue_name="unknown_queue")


def test_enqueue_logs_the_enqueue_on_django_tasks(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        result = tasks.noop_task.enqueue()
    (record,) = [r for r in caplog.records if r.name == "django.tasks"]
    assert "enqueued" in record.getMessage()
    assert result.id in record.getMessage()


async def test_a_worker_runs_the_result_to_success_and_refresh_shows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = await database_sync_to_async(tasks.calculate_meaning_of_life.enqueue)()
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        await run_worker_until(lambda: Job.objects.get(pk=result.id).status == "succeeded")
    assert result.status == TaskResultStatus.READY  # as it was: refresh() reads it again
    await result.arefresh()
    assert (result.status, result.return_value, result.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        42,
        1,
    )
    assert result.is_finished
    assert result.started_at is not None
    assert result.finished_at is not None
    assert result.enqueued_at is not None
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    logged = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert [m for m in logged if result.id in m] == [
        f"Task id={result.id} path={tasks.calculate_meaning_of_life.module_path} state=RUNNING",
        f"Task id={result.id} path={tasks.calculate_meaning_of_life.module_path} state=SUCCESSFUL",
    ]
    assert not any("None" in m for m in logged)


async def test_the_context_has_the_result_and_the_attempt() -> None:
    def enqueue() -> tuple[str, str]:
        return tasks.get_task_id.enqueue().id, tasks.context_attempt.enqueue(1).id

    task_id, attempt = await database_sync_to_async(enqueue)()
    await run_worker_until(
        lambda: Job.objects.filter(pk__in=[task_id, attempt], status="succeeded").count() == 2
    )
    assert (await default_task_backend.aget_result(task_id)).return_value == task_id
    assert (await default_task_backend.aget_result(attempt)).return_value == 1


async def test_each_failed_attempt_is_an_error_kept_after_the_success(tmp_path: Path) -> None:
    marks = str(tmp_path)
    result = await database_sync_to_async(tasks.fails_twice.enqueue)(marks)
    with override_settings(JOBS={**settings.JOBS, "RETRY_BACKOFF": 0.01}):
        await run_worker_until(
            lambda: Job.objects.get(pk=result.id).status == "succeeded", timeout=30
        )
    fetched = await default_task_backend.aget_result(result.id)
    assert (fetched.status, fetched.return_value, fetched.attempts) == (
        TaskResultStatus.SUCCESSFUL,
        "third time lucky",
        3,
    )
    assert [error.exception_class for error in fetched.errors] == [RuntimeError, RuntimeError]
    assert fetched.errors[0].traceback.endswith("RuntimeError: attempt 1 fails\n")
    assert fetched.errors[1].traceback.endswith("RuntimeError: attempt 2 fails\n")
    # started_at is the first attempt's start; last_attempted_at the third's.
    job = await database_sync_to_async(Job.objects.get)(pk=result.id)
    first_start = datetime.fromisoformat(job.errors[0]["started_at"])
    assert fetched.started_at == first_start
    assert fetched.last_attempted_at is not None
    assert fetched.last_attempted_at > datetime.fromisoformat(job.errors[1]["failed_at"])


def test_the_enqueue_is_part_of_the_callers_transaction() -> None:
    with transaction.atomic():
        result = tasks.noop_task.enqueue()
        assert result.enqueued_at is not None
        assert Job.objects.filter(pk=result.id).exists()
    assert Job.objects.filter(pk=result.id).exists()
    rolled_back: list[str] = []

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            rolled_back.append(tasks.noop_task.enqueue().id)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    assert not Job.objects.filter(pk=rolled_back[0]).exists()
