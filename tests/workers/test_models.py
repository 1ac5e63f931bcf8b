"""workers/models.py: the job row's state changes, each written once, and the one-statement
batch paths beside them (insert, claim, record, hand back); the lease."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import columns
from workers.models import Job, Lease
from workers.recover import jobs_sweep

pytestmark = pytest.mark.django_db(transaction=True)


def test_claims_follow_priority_then_age_and_never_hand_out_a_job_twice() -> None:
    low = tasks.trivial.enqueue()
    high = tasks.trivial.using(priority=10).enqueue()
    later = tasks.trivial.using(run_after=timezone.now() + timedelta(hours=1)).enqueue()
    (first,) = Job.objects.claim(channel="compute", worker_id="a", size=1)
    (second,) = Job.objects.claim(channel="compute", worker_id="b", size=1)
    assert (first.pk, second.pk) == (int(high.id), int(low.id))
    assert Job.objects.claim(channel="compute", worker_id="c", size=1) == []
    assert Job.objects.get(pk=later.id).status == "queued"


def test_a_batch_claim_takes_ready_jobs_in_order_and_returns_them_as_stored() -> None:
    older = [tasks.trivial.enqueue() for _ in range(3)]
    urgent = tasks.trivial.using(priority=5).enqueue(marks="")
    jobs = Job.objects.claim(channel="compute", worker_id="w", size=3)
    assert [job.pk for job in jobs] == [int(urgent.id), int(older[0].id), int(older[1].id)]
    for job in jobs:
        assert columns(job) == columns(Job.objects.get(pk=job.pk))
        assert (job.status, job.attempts, job.worker_ids) == ("running", 1, ["w"])
    rest = Job.objects.claim(channel="compute", worker_id="v", size=5)
    assert [job.pk for job in rest] == [int(older[2].id)]


def test_insert_writes_the_row_that_create_writes(user: Any) -> None:
    now = timezone.now()
    values: dict[str, Any] = {
        "task_path": "tests.tasks.count_up",
        "channel": "compute",
        "priority": 3,
        "args": [1, "two", None],
        "kwargs": {"delay": 0.5, "nested": {"a": [1]}},
        "owner": user,
        "meta": {"upload": 12},
        "max_attempts": 4,
        "time_limit": 7.5,
        "run_after": now,
        "enqueued_at": now,
        "woken_at": None,
    }
    inserted = Job.objects.insert(**values)
    created = Job.objects.create(**values)
    stored = Job.objects.get(pk=inserted.pk)
    assert columns(inserted) == columns(stored)
    differ = {"id", "updated_at"}
    assert {k: v for k, v in columns(stored).items() if k not in differ} == {
        k: v for k, v in columns(Job.objects.get(pk=created.pk)).items() if k not in differ
    }


@pytest.mark.postgres
def test_deleting_more_jobs_than_a_statement_may_have_parameters_works() -> None:
    # Server-side binding, which the per-job statements use, caps a statement at 65,535
    # parameters; Django's delete of this many jobs needs more, and runs on its own cursors.
    prepared = Job.objects.insert(task_path="tests.tasks.trivial", channel="compute", time_limit=1)
    with connection.cursor() as cursor:
        columns = [f.column for f in Job._meta.concrete_fields if not f.primary_key]
        names = ", ".join(connection.ops.quote_name(column) for column in columns)
        cursor.execute(
            f"INSERT INTO {Job._meta.db_table} ({names}) "  # noqa: S608 (the model's own names)
            f"SELECT {names} FROM {Job._meta.db_table}, generate_series(1, 66000) "
            "WHERE id = %s",
            [prepared.pk],
        )
    assert Job.objects.all().delete()[0] == 66_001


def test_successes_are_recorded_together_where_the_worker_still_owns_the_job() -> None:
    for _ in range(3):
        tasks.trivial.enqueue()
    jobs = Job.objects.claim(channel="compute", worker_id="w", size=3)
    Job.objects.filter(pk=jobs[1].pk).update(status="cancelled")
    recorded = Job.objects.record_successes(
        [(jobs[0], {"n": 1}), (jobs[1], "too late"), (jobs[2], None)]
    )
    assert [job.pk for job in recorded] == [jobs[0].pk, jobs[2].pk]
    first, cancelled, last = (Job.objects.get(pk=job.pk) for job in jobs)
    assert (first.status, first.result, first.progress) == ("succeeded", {"n": 1}, 100)
    assert first.finished_at is not None
    assert (cancelled.status, cancelled.result) == ("cancelled", None)
    assert (last.status, last.result) == ("succeeded", None)


def test_jobs_handed_back_unstarted_do_not_count_an_attempt() -> None:
    for _ in range(2):
        tasks.trivial.enqueue()
    jobs = Job.objects.claim(channel="compute", worker_id="w", size=2)
    assert Job.objects.hand_back(jobs) == 2
    for job in jobs:
        stored = Job.objects.get(pk=job.pk)
        assert (stored.status, stored.attempts, stored.worker_id) == ("queued", 0, "")


def test_a_worker_that_lost_its_job_cannot_overwrite_the_outcome() -> None:
    result = tasks.trivial.enqueue()
    (job,) = Job.objects.claim(channel="compute", worker_id="slow", size=1)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    jobs_sweep(holder="me")
    (successor,) = Job.objects.claim(channel="compute", worker_id="fast", size=1)
    assert successor.set_succeeded("from the successor")
    assert not job.set_succeeded("from the slow one")
    assert not job.heartbeat()
    assert Job.objects.get(pk=result.id).result == "from the successor"


def test_backoff_grows_exponentially_and_is_capped() -> None:
    job = Job(attempts=1, max_attempts=10, time_limit=1)
    with override_settings(JOBS={"RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 10}):
        delays = []
        for attempts in range(1, 6):
            job.attempts = attempts
            delays.append(job.retry_delay())
    assert delays == [2, 4, 8, 10, 10]


def test_only_one_process_holds_the_sweep_lease_until_it_expires() -> None:
    assert Lease.acquire("sweep", holder="a", ttl=60)
    assert not Lease.acquire("sweep", holder="b", ttl=60)
    assert Lease.acquire("sweep", holder="a", ttl=60)  # renewal
    Lease.objects.filter(name="sweep").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Lease.acquire("sweep", holder="b", ttl=60)
