"""The task a job was enqueued as, and Django's task signals sent about it (workers/results.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.tasks.signals import task_started

from tests import tasks
from tests.jobs import run_worker_until
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_signal_receiver_that_fails_is_logged_and_the_job_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def breaks(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("a receiver's own bug")

    task_started.connect(breaks, weak=False)
    try:
        job_id = (await database_sync_to_async(tasks.trivial.enqueue)()).id
        with caplog.at_level(logging.ERROR, logger="workers.results"):
            await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "succeeded")
    finally:
        task_started.disconnect(breaks)
    (record,) = [r for r in caplog.records if r.name == "workers.results"]
    assert record.getMessage().startswith(f"job={job_id} signal receiver")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
