"""workers/chains.py: a job that runs once the jobs it names all succeeded, and fails unrun
when one of them does not."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests import tasks
from tests.jobs import run_worker_until
from workers.models import Job
from workers.services import job_cancel

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_job_after_others_waits_until_they_all_succeeded_then_runs_once() -> None:
    def enqueue() -> tuple[list[int], int]:
        first = [tasks.sleepy.enqueue(0.1), tasks.calculate_meaning_of_life.enqueue()]
        fan_in = tasks.get_task_id.using(after=first).enqueue()
        return [int(r.id) for r in first], int(fan_in.id)

    first, fan_in = await database_sync_to_async(enqueue)()
    assert (await database_sync_to_async(Job.objects.get)(pk=fan_in)).status == "waiting"
    await run_worker_until(lambda: Job.objects.get(pk=fan_in).status == "succeeded")
    jobs = {pk: await database_sync_to_async(Job.objects.get)(pk=pk) for pk in [*first, fan_in]}
    assert jobs[fan_in].attempts == 1
    last_prerequisite = max(jobs[pk].finished_at for pk in first)  # type: ignore[type-var]
    assert jobs[fan_in].started_at is not None
    assert jobs[fan_in].started_at >= last_prerequisite
    assert all(jobs[pk].dependents == [fan_in] for pk in first)


async def test_a_job_after_one_that_fails_fails_unrun_and_so_do_its_own_dependents() -> None:
    def enqueue() -> tuple[int, int, int]:
        failing = tasks.bad_input.enqueue("broken")
        middle = tasks.trivial.using(after=[failing]).enqueue()
        last = tasks.trivial.using(after=[middle]).enqueue()
        return int(failing.id), int(middle.id), int(last.id)

    failing, middle, last = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=last).status == "failed")
    for pk in (middle, last):
        job = await database_sync_to_async(Job.objects.get)(pk=pk)
        assert (job.status, job.attempts) == ("failed", 0)
        assert "did not succeed" in job.error
    assert (await database_sync_to_async(Job.objects.get)(pk=failing)).status == "failed"


def test_a_job_after_jobs_already_done_is_queued_at_once_and_one_cancelled_fails_it() -> None:
    done = tasks.trivial.enqueue()
    Job.objects.filter(pk=done.id).update(status="succeeded")
    assert Job.objects.get(pk=tasks.trivial.using(after=[done]).enqueue().id).status == "queued"
    pending = tasks.trivial.enqueue()
    waiting = tasks.trivial.using(after=[pending]).enqueue()
    assert job_cancel(job=Job.objects.get(pk=pending.id))
    assert Job.objects.get(pk=waiting.id).status == "failed"
