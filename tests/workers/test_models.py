"""workers/models.py: the job row's state changes, each written once, and the one-statement
batch paths beside them (insert, claim, record, hand back); the lease."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import columns
from workers.backends import enqueue_for
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


def test_a_claim_built_once_runs_at_the_time_of_each_run() -> None:
    due = timezone.now() + timedelta(seconds=0.5)
    soon = tasks.trivial.using(run_after=due).enqueue()
    assert Job.objects.claim(channel="compute", worker_id="w", size=1) == []
    while timezone.now() <= due:
        time.sleep(0.05)
    before = timezone.now()
    # The same statement as above (channel, worker and size), with this run's time.
    (job,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    assert job.pk == int(soon.id)
    assert job.last_attempted_at is not None
    assert job.last_attempted_at >= before
    assert job.heartbeat_at == job.updated_at == job.last_attempted_at
    # Its times read as Django reads them.
    stored = Job.objects.get(pk=job.pk)
    assert columns(job) == columns(stored)
    assert stored.last_attempted_at is not None
    assert job.last_attempted_at.tzinfo == stored.last_attempted_at.tzinfo


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


# Columns that say when something happened, which two statements never share, the id, and
# the fair rank (one per job of an owner, like the id).
TIMES = {
    "id",
    "fair_rank",
    "last_attempted_at",
    "enqueued_at",
    "run_after",
    "woken_at",
    "started_at",
    "heartbeat_at",
    "finished_at",
    "updated_at",
}


def without_times(job: Job) -> dict[str, Any]:
    return {name: value for name, value in columns(job).items() if name not in TIMES}


def alike(count: int, **changes: Any) -> list[Job]:
    """`count` queued jobs equal in every column but the id and times, `changes` written."""
    ids = [int(tasks.count_up.using(priority=2).enqueue(3, 0.5).id) for _ in range(count)]
    Job.objects.filter(pk__in=ids).update(**changes)
    jobs = list(Job.objects.filter(pk__in=ids).order_by("pk"))
    assert len({str(sorted(without_times(job).items())) for job in jobs}) == 1
    return jobs


@pytest.mark.parametrize(
    "before",
    [{}, {"attempts": 1, "worker_ids": ["earlier"], "error": "RuntimeError: boom"}],
    ids=["first attempt", "a retry"],
)
def test_a_claim_of_one_job_writes_what_a_batch_claim_writes(before: dict[str, Any]) -> None:
    one, other = alike(2, **before)
    assert one.claim("w")
    (batch,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    assert batch.pk == other.pk
    claimed, batch_claimed = Job.objects.get(pk=one.pk), Job.objects.get(pk=other.pk)
    assert without_times(claimed) == without_times(batch_claimed)
    assert (claimed.status, claimed.attempts, claimed.worker_id, claimed.worker_ids) == (
        "running",
        before.get("attempts", 0) + 1,
        "w",
        [*before.get("worker_ids", []), "w"],
    )
    for job in (claimed, batch_claimed):
        assert job.started_at is not None
        assert job.started_at == job.heartbeat_at == job.updated_at
        assert job.started_at >= job.enqueued_at
    # Either way the caller holds the row as stored.
    assert columns(one) == columns(claimed)
    assert columns(batch) == columns(batch_claimed)


def test_a_claim_of_a_job_no_longer_queued_changes_nothing() -> None:
    (job,) = alike(1)
    Job.objects.filter(pk=job.pk).update(status="cancelled")
    stored = columns(Job.objects.get(pk=job.pk))
    assert not job.claim("w")
    assert columns(Job.objects.get(pk=job.pk)) == stored


@pytest.mark.parametrize(
    "result",
    [{"steps": 3, "nested": {"a": [1, 2.5, None]}}, ["é", True], "ok", 0, None],
    ids=["object", "array", "string", "zero", "none"],
)
def test_a_batch_record_of_a_success_writes_what_set_succeeded_writes(result: Any) -> None:
    # As a retried job stands: its last failure still on the row, until a success clears it.
    alike(
        2,
        error="RuntimeError: boom",
        error_class="builtins.RuntimeError",
        traceback="Traceback (most recent call last): ...",
    )
    one, other = Job.objects.claim(channel="compute", worker_id="w", size=2)
    Job.objects.filter(pk__in=[one.pk, other.pk]).update(progress=40, progress_message="step 1")
    one.progress = other.progress = 40
    one.progress_message = other.progress_message = "step 1"
    assert one.set_succeeded(result)
    assert Job.objects.record_successes([(other, result)]) == [other]
    succeeded, recorded = Job.objects.get(pk=one.pk), Job.objects.get(pk=other.pk)
    assert without_times(succeeded) == without_times(recorded)
    assert (recorded.status, recorded.progress, recorded.result) == ("succeeded", 100, result)
    assert (recorded.error, recorded.error_class, recorded.traceback) == ("", "", "")
    for job in (succeeded, recorded):
        assert job.finished_at is not None
        assert job.finished_at >= job.started_at
    # Either way the caller's job says what the row says.
    assert columns(one) == columns(succeeded)
    assert columns(other) == columns(recorded)


def test_a_failed_attempt_waits_for_its_backoff_and_fails_for_good_when_attempts_run_out() -> None:
    (job,) = alike(1)
    for attempt in (1, 2):
        (job,) = Job.objects.claim(channel="compute", worker_id=f"w{attempt}", size=1)
        failed_at = timezone.now()
        assert job.set_failed(
            error="RuntimeError: boom", error_class="builtins.RuntimeError", retry=True
        )
        stored = Job.objects.get(pk=job.pk)
        assert (stored.status, stored.attempts, stored.worker_id) == ("queued", attempt, "")
        assert (stored.error, stored.woken_at, stored.finished_at) == (
            "RuntimeError: boom",
            None,
            None,
        )
        # Not ready again before its backoff is over.
        assert stored.run_after > failed_at
        assert Job.objects.claim(channel="compute", worker_id="eager", size=1) == []
        Job.objects.filter(pk=job.pk).update(run_after=timezone.now())
    (job,) = Job.objects.claim(channel="compute", worker_id="w3", size=1)
    assert job.set_failed(
        error="RuntimeError: boom", error_class="builtins.RuntimeError", retry=True
    )
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.attempts, stored.worker_ids) == ("failed", 3, ["w1", "w2", "w3"])
    assert stored.finished_at is not None
    assert Job.objects.claim(channel="compute", worker_id="eager", size=1) == []


# Fair scheduling between owners, unique jobs, limits per key.


def test_one_owners_backlog_does_not_hold_back_another_owners_job(
    user: Any, other_user: Any
) -> None:
    with enqueue_for(owner=user):
        backlog = [int(tasks.trivial.enqueue().id) for _ in range(10)]
    Job.objects.claim(channel="compute", worker_id="w", size=3)  # three of them run
    with enqueue_for(owner=other_user):
        single = int(tasks.trivial.enqueue().id)
    # The other owner's job waits for one job of the backlog at most, not for seven.
    claimed = [job.pk for job in Job.objects.claim(channel="compute", worker_id="w", size=2)]
    assert claimed == [backlog[3], single]
    # And owners take turns: a batch of four has both, in rank order.
    with enqueue_for(owner=other_user):
        more = [int(tasks.trivial.enqueue().id) for _ in range(2)]
    batch = [job.pk for job in Job.objects.claim(channel="compute", worker_id="w", size=4)]
    assert batch == [backlog[4], more[0], backlog[5], more[1]]
    # Priority still comes first.
    with enqueue_for(owner=user):
        urgent = int(tasks.trivial.using(priority=5).enqueue().id)
    (first,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    assert first.pk == urgent


def test_an_owner_back_after_a_while_does_not_jump_the_queue(user: Any, other_user: Any) -> None:
    with enqueue_for(owner=user):
        first = [int(tasks.trivial.enqueue().id) for _ in range(5)]
    with enqueue_for(owner=other_user):
        theirs = [int(tasks.trivial.enqueue().id) for _ in range(5)]
    Job.objects.claim(channel="compute", worker_id="w", size=8)  # the first owner's all ran
    Job.objects.filter(pk__in=first).update(status="succeeded")
    with enqueue_for(owner=user):
        back = int(tasks.trivial.enqueue().id)
    # Ranked from the channel's clock, not from 0: behind the other owner's waiting job.
    claimed = [job.pk for job in Job.objects.claim(channel="compute", worker_id="w", size=2)]
    assert claimed == [theirs[4], back]


def test_a_unique_task_is_not_enqueued_twice_while_unfinished() -> None:
    first = tasks.unique_per_upload.enqueue(7)
    again = tasks.unique_per_upload.enqueue(7)
    other = tasks.unique_per_upload.enqueue(8)
    assert again.id == first.id
    assert other.id != first.id
    assert Job.objects.filter(task_path=tasks.unique_per_upload.module_path).count() == 2
    (job,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    assert tasks.unique_per_upload.enqueue(7).id == first.id  # running: still the same
    assert job.set_succeeded(7)
    # Finished: a new one may be enqueued.
    assert tasks.unique_per_upload.enqueue(7).id != first.id


def test_a_concurrency_limit_holds_per_key_across_claims() -> None:
    a = [int(tasks.one_at_a_time.enqueue("a", 0, "").id) for _ in range(3)]
    b = int(tasks.one_at_a_time.enqueue("b", 0, "").id)
    plain = int(tasks.trivial.enqueue().id)
    batch = Job.objects.claim_limited(channel="compute", worker_id="w", size=10)
    assert sorted(job.pk for job in batch) == [a[0], b]
    # The fast claim never takes a limited job.
    assert [job.pk for job in Job.objects.claim(channel="compute", worker_id="v", size=10)] == [
        plain
    ]
    assert Job.objects.claim_limited(channel="compute", worker_id="v", size=10) == []
    running_a = next(job for job in batch if job.pk == a[0])
    assert running_a.set_succeeded("a")
    (then,) = Job.objects.claim_limited(channel="compute", worker_id="v", size=10)
    assert then.pk == a[1]


def test_a_rate_limit_counts_the_starts_of_its_period() -> None:
    ids = [int(tasks.twice_an_hour.enqueue("k").id) for _ in range(3)]
    first = Job.objects.claim_limited(channel="compute", worker_id="w", size=10)
    assert [job.pk for job in first] == ids[:2]
    for job in first:
        assert job.set_succeeded("k")
    # Finished, but started within the hour: no room.
    assert Job.objects.claim_limited(channel="compute", worker_id="w", size=10) == []
    Job.objects.filter(pk__in=ids[:2]).update(last_attempted_at=timezone.now() - timedelta(hours=2))
    assert [
        job.pk for job in Job.objects.claim_limited(channel="compute", worker_id="w", size=10)
    ] == [ids[2]]
