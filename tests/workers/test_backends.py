"""workers/backends.py: the Tasks backend (enqueue, get_result), the `task` decorator and
its options, enqueue_for, and Django's task signals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.dispatch import Signal
from django.tasks import TaskResult, TaskResultStatus, default_task_backend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started

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


async def test_a_signal_receiver_that_fails_is_logged_and_the_job_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def breaks(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("a receiver's own bug")

    task_started.connect(breaks, weak=False)
    try:
        job_id = (await database_sync_to_async(tasks.trivial.enqueue)()).id
        with caplog.at_level(logging.ERROR, logger="workers.backends"):
            await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "succeeded")
    finally:
        task_started.disconnect(breaks)
    (record,) = [r for r in caplog.records if r.name == "workers.backends"]
    assert record.getMessage().startswith(f"job={job_id} signal receiver")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_get_result_of_an_unknown_id_raises_task_result_does_not_exist() -> None:
    gone = tasks.trivial.enqueue()
    Job.objects.filter(pk=gone.id).delete()
    for result_id in (gone.id, "not-a-number", ""):
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result_id)
