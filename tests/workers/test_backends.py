"""workers/backends.py: the Tasks backend (enqueue, get_result), the `task` decorator and
its options, enqueue_for, and Django's task signals."""

from __future__ import annotations

import pytest
from django.tasks import TaskResultStatus, default_task_backend

from tests import tasks
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
