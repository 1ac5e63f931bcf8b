"""How a worker takes and settles its jobs: batches of quick jobs claimed and recorded in one
statement each, a batch that never holds jobs back from another worker for long, one sender
of job events that keeps only a job's newest unsent event, and wake-ups merged in a burst."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import run_worker_until, until
from workers import events, watchdog
from workers.backends import enqueue_for
from workers.events import EventSender, groups_with_members
from workers.models import Job
from workers.wakeups import finish_sends, wake_soon
from workers.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_layer(empty_layer: None) -> None:
    pass


def columns(job: Job) -> dict[str, Any]:
    return {field.attname: getattr(job, field.attname) for field in Job._meta.concrete_fields}


async def receive_all(channel: str, quiet: float = 0.5) -> list[dict[str, Any]]:
    layer = get_channel_layer()
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), quiet))
        except TimeoutError:
            return received


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


async def test_a_job_longer_than_a_tick_says_it_runs_and_every_job_ends_with_its_outcome(
    user: Any,
) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)

    def enqueue() -> tuple[int, int]:
        with enqueue_for(owner=user):
            return int(tasks.trivial.enqueue().id), int(tasks.sleepy.enqueue(0.4).id)

    quick, slow = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=slow).status == "succeeded")
    received = await receive_all(listener)
    by_job = {job: [e for e in received if e["job"] == job] for job in (quick, slow)}
    assert [e["type"] for e in by_job[slow]] == ["job.progress", "job.done"]
    assert by_job[slow][0]["status"] == "running"
    assert by_job[quick][-1]["type"] == "job.done"
    assert len(by_job[quick]) <= 2


def new_worker() -> Worker:
    from project.asgi import application

    return Worker(
        application=application,
        channels=["compute"],
        channel_layer=get_channel_layer(),
        handle_signals=False,
    )


async def test_a_long_job_in_a_batch_frees_the_jobs_behind_it_for_another_worker() -> None:
    def enqueue() -> tuple[list[int], int, list[int]]:
        before = [int(tasks.trivial.using(priority=2).enqueue().id) for _ in range(2)]
        slow = int(tasks.sleepy.using(priority=1).enqueue(2).id)
        after = [int(tasks.trivial.enqueue().id) for _ in range(3)]
        return before, slow, after

    before, slow, after = await database_sync_to_async(enqueue)()
    first = new_worker()
    # As if it had just run many quick jobs: it claims the six in one batch.
    first.drains["compute"].duration = 0.0001
    worker, task = first, asyncio.ensure_future(first.arun())
    second_worker = second_task = None
    try:
        # The window passes while the slow job runs: what ran is recorded, the rest is free.
        await until(lambda: Job.objects.filter(pk__in=before, status="succeeded").count() == 2)
        await until(lambda: Job.objects.filter(pk__in=after, status="queued").count() == 3)
        assert (await database_sync_to_async(Job.objects.get)(pk=slow)).status == "running"
        second = second_worker = new_worker()
        second_task = asyncio.ensure_future(second.arun())
        await until(lambda: Job.objects.filter(pk__in=after, status="succeeded").count() == 3)
        assert (await database_sync_to_async(Job.objects.get)(pk=slow)).status == "running"
        for job_id in after:
            job = await database_sync_to_async(Job.objects.get)(pk=job_id)
            assert job.worker_id == second.worker_id
            assert job.worker_ids == [first.worker_id, second.worker_id]
            assert job.attempts == 1
        await until(lambda: Job.objects.get(pk=slow).status == "succeeded")
    finally:
        for each, each_task in ((worker, task), (second_worker, second_task)):
            if each is not None and each_task is not None:
                each.request_stop()
                await asyncio.wait_for(each_task, 15)


async def test_a_task_stuck_past_its_time_limit_fails_and_the_channel_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watchdog, "UNWIND_GRACE", 0.5)
    stuck = tasks.sleeps_in_c.using(time_limit=0.3)

    def enqueue() -> tuple[int, int]:
        return int(stuck.enqueue(3).id), int(tasks.trivial.enqueue().id)

    stuck_id, next_id = await database_sync_to_async(enqueue)()
    started = asyncio.get_running_loop().time()
    await run_worker_until(lambda: Job.objects.get(pk=next_id).status == "succeeded")
    # Well before the stuck call returns (3 s): the channel got a new thread.
    assert asyncio.get_running_loop().time() - started < 2.5
    job = await database_sync_to_async(Job.objects.get)(pk=stuck_id)
    assert (job.status, job.error) == ("failed", "took longer than its time limit of 0.3 s")


async def test_the_event_sender_keeps_only_the_newest_unsent_event_of_a_job() -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    for pk in (101, 102):
        await layer.group_add(events.job_group(pk), listener)
    sender = EventSender(asyncio.get_running_loop())
    first = Job(pk=101, task_path="tests.tasks.count_up", channel="compute", status="running")
    second = Job(pk=102, task_path="tests.tasks.trivial", channel="compute", status="running")
    # Published before the sender's loop gets a turn: all of them wait together.
    for percent in (10, 50, 90):
        first.progress = percent
        sender.publish(first, events.JOB_PROGRESS)
    sender.publish(second, events.JOB_PROGRESS)
    first.status, first.progress = "succeeded", 100
    sender.publish(first, events.JOB_DONE)
    await sender.flush(timeout=5)
    received = await receive_all(listener)
    # In the order of each job's newest event.
    assert [(e["job"], e["type"], e["progress"]) for e in received] == [
        (102, "job.progress", 0),
        (101, "job.done", 100),
    ]


async def test_events_skip_only_the_groups_that_nobody_joined() -> None:
    layer = get_channel_layer()
    watcher, leaver = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(events.job_group(201), watcher)
    await layer.group_add(events.job_group(202), leaver)
    await layer.group_discard(events.job_group(202), leaver)
    wanted = {events.job_group(pk) for pk in (201, 202, 203)}
    listened = await groups_with_members(layer, wanted)
    if settings.REDIS_URL:
        assert listened == {events.job_group(201)}
    else:
        assert listened == wanted  # other layers are not asked: every group gets its events
    # The sender sends to the group with a member, and nothing fails for the others.
    sender = EventSender(asyncio.get_running_loop())
    for pk in (201, 202, 203):
        sender.publish(Job(pk=pk, task_path="tests.tasks.trivial", status="succeeded"), "job.done")
    await sender.flush(timeout=5)
    assert [event["job"] for event in await receive_all(watcher)] == [201]
    assert await receive_all(leaver, quiet=0.1) == []


def test_a_burst_of_enqueues_leaves_one_wakeup_that_serves_every_job() -> None:
    jobs = [int(tasks.trivial.enqueue().id) for _ in range(30)]
    finish_sends()

    async def waiting_wakeups() -> list[dict[str, Any]]:
        return await receive_all("compute", quiet=0.3)

    (wakeup,) = asyncio.run(waiting_wakeups())
    assert wakeup["type"] == events.JOB_WAKEUP
    # A refused wake-up is no failure: no job waits for the recovery sweep.
    assert not Job.objects.filter(pk__in=jobs, woken_at__isnull=True).exists()
    wake_soon(Job.objects.get(pk=jobs[0]))
    finish_sends()
    assert Job.objects.get(pk=jobs[0]).woken_at is not None, "a full channel is no failure"
    asyncio.run(
        run_worker_until(
            lambda: Job.objects.filter(pk__in=jobs, status="succeeded").count() == 30, timeout=10
        )
    )


@pytest.mark.redis
def test_a_process_spaces_its_wakeups_the_first_at_once_the_next_when_the_time_is_up() -> None:
    layer = get_channel_layer()

    async def next_wakeup(within: float) -> int | None:
        """The job of the next wake-up on the channel, if one comes `within` seconds."""
        try:
            return int((await asyncio.wait_for(layer.receive("compute"), within))["job"])
        except TimeoutError:
            return None

    with override_settings(JOBS={**settings.JOBS, "WAKEUP_SPACING": 1.0}):
        first = int(tasks.trivial.enqueue().id)
        assert asyncio.run(next_wakeup(within=0.5)) == first
        second = int(tasks.trivial.enqueue().id)
        # Not before the spacing is up, which leaves the second job waiting for it...
        assert asyncio.run(next_wakeup(within=0.3)) is None
        # ...but then it goes out, for the newest job.
        assert asyncio.run(next_wakeup(within=3)) == second
        finish_sends()
