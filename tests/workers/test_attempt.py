"""workers/attempt.py: one attempt of one job: the task called, progress reported, a failure
recorded with its reason."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from tests import tasks
from tests.jobs import run_worker_until
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
