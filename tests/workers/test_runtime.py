"""The job runtime inside one process: rows, enqueue after commit, the backend, recovery, and
the worker running jobs on the test's own event loop and channel layer."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.tasks import TaskResultStatus, default_task_backend
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import run_worker_until
from tests.processes import wait_for
from workers import events
from workers.backends import enqueue_for
from workers.models import Job, Lease
from workers.recover import jobs_sweep
from workers.services import job_cancel
from workers.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_layer(empty_layer: None) -> None:
    pass


async def drain_channel(channel: str) -> list[dict[str, Any]]:
    layer = get_channel_layer()
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), 0.2))
        except TimeoutError:
            return messages


def test_enqueue_records_the_job_and_wakes_a_worker_only_after_commit(user: Any) -> None:
    with transaction.atomic():
        with enqueue_for(owner=user, upload=7):
            result = tasks.trivial.enqueue(marks="")
        job = Job.objects.get(pk=result.id)
        assert job.status == "queued"
        assert asyncio.run(drain_channel("compute")) == []
    assert asyncio.run(drain_channel("compute")) == [{"type": "job.wakeup", "job": job.pk}]
    job.refresh_from_db()
    assert job.woken_at is not None
    assert job.owner == user
    assert job.meta == {"upload": 7}
    assert job.channel == "compute"
    assert job.task_path == "tests.tasks.trivial"
    assert result.status == TaskResultStatus.READY


def test_a_rolled_back_enqueue_leaves_no_job_and_sends_nothing() -> None:
    class Rollback(Exception):
        pass

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            tasks.trivial.enqueue()
            raise Rollback

    with pytest.raises(Rollback):
        enqueue_then_fail()
    assert not Job.objects.exists()
    assert asyncio.run(drain_channel("compute")) == []


def test_a_layer_that_cannot_take_the_wakeup_does_not_fail_the_enqueue() -> None:
    broken = {
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]
            },
        }
    }
    with override_settings(CHANNEL_LAYERS=broken):
        from channels.layers import channel_layers

        channel_layers.backends.clear()
        try:
            result = tasks.trivial.enqueue()
        finally:
            channel_layers.backends.clear()
    job = Job.objects.get(pk=result.id)
    assert job.status == "queued"
    # The enqueue does not wait for the layer; once the send has failed, the row says so
    # and the sweep will send it.
    wait_for(lambda: Job.objects.get(pk=result.id).woken_at is None, 10, "the failed wake-up")


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


def test_claims_follow_priority_then_age_and_never_hand_out_a_job_twice() -> None:
    low = tasks.trivial.enqueue()
    high = tasks.trivial.using(priority=10).enqueue()
    later = tasks.trivial.using(run_after=timezone.now() + timedelta(hours=1)).enqueue()
    (first,) = Job.objects.claim(channel="compute", worker_id="a", size=1)
    (second,) = Job.objects.claim(channel="compute", worker_id="b", size=1)
    assert (first.pk, second.pk) == (int(high.id), int(low.id))
    assert Job.objects.claim(channel="compute", worker_id="c", size=1) == []
    assert Job.objects.get(pk=later.id).status == "queued"


def test_a_deferred_job_is_woken_by_the_sweep_once_due() -> None:
    result = tasks.trivial.using(run_after=timezone.now() + timedelta(seconds=1)).enqueue()
    assert jobs_sweep(holder="me")["woken"] == 0
    Job.objects.filter(pk=result.id).update(run_after=timezone.now() - timedelta(seconds=1))
    assert jobs_sweep(holder="me")["woken"] == 1
    assert asyncio.run(drain_channel("compute")) == [{"type": "job.wakeup", "job": int(result.id)}]


def test_the_sweep_requeues_a_silent_workers_job_and_gives_up_after_max_attempts() -> None:
    result = tasks.trivial.enqueue()
    job = Job.objects.get(pk=result.id)
    job.claim("dead-worker")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_sweep(holder="me")["recovered"] == 1
    job.refresh_from_db()
    assert job.status == "queued"
    assert "dead-worker stopped responding" in job.error
    for attempt in range(2, 4):
        Lease.objects.all().delete()
        (job,) = Job.objects.claim(channel="compute", worker_id=f"dead-{attempt}", size=1)
        Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
        jobs_sweep(holder="me")
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.endswith("gave up after 3 attempts")


def test_only_one_process_holds_the_sweep_lease_until_it_expires() -> None:
    assert Lease.acquire("sweep", holder="a", ttl=60)
    assert not Lease.acquire("sweep", holder="b", ttl=60)
    assert Lease.acquire("sweep", holder="a", ttl=60)  # renewal
    Lease.objects.filter(name="sweep").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Lease.acquire("sweep", holder="b", ttl=60)


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


async def test_the_worker_runs_jobs_and_sends_ordered_events_to_the_owner(user: Any) -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(events.user_group(user.pk), listener)

    def enqueue() -> int:
        with enqueue_for(owner=user, upload=3):
            return int(tasks.count_up.enqueue(3, 0.01).id)

    job_id = await database_sync_to_async(enqueue)()
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "succeeded")
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(listener), 0.5))
        except TimeoutError:
            break
    assert [e["type"] for e in received][-1] == "job.done"
    assert [e["progress"] for e in received] == sorted(e["progress"] for e in received)
    assert {e["upload"] for e in received} == {3}
    assert {e["job"] for e in received} == {job_id}


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


async def test_a_time_limit_interrupts_python_code_and_the_worker_goes_on() -> None:
    slow = tasks.sleepy.using(time_limit=0.5)
    slow_id = int((await database_sync_to_async(slow.enqueue)(30)).id)
    next_id = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)
    await run_worker_until(lambda: Job.objects.get(pk=next_id).status == "succeeded")
    job = await database_sync_to_async(Job.objects.get)(pk=slow_id)
    assert job.status == "failed"
    assert job.error == "took longer than its time limit of 0.5 s"
    assert job.error_class == "workers.exceptions.TimeLimitExceeded"


async def test_a_task_returning_something_that_is_not_json_fails_clearly() -> None:
    job_id = int((await database_sync_to_async(tasks.returns_a_set.enqueue)()).id)
    await run_worker_until(lambda: Job.objects.get(pk=job_id).status == "failed")
    job = await database_sync_to_async(Job.objects.get)(pk=job_id)
    assert job.error.startswith("returned a value that is not JSON")
    assert job.attempts == 1


async def test_a_channel_consumer_that_crashes_is_replaced_and_the_channel_goes_on() -> None:
    crashed = asyncio.Event()

    class CrashesOnce(Worker):
        async def drain(self, channel: str) -> None:
            if not crashed.is_set():
                crashed.set()
                raise RuntimeError("the consumer's first wake-up crashes it")
            await super().drain(channel)

    first = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)

    async def enqueue_after_the_crash() -> int:
        await crashed.wait()
        return int((await database_sync_to_async(tasks.trivial.enqueue)()).id)

    second = asyncio.ensure_future(enqueue_after_the_crash())
    # Well before the sweep would send anything again (JOBS_REDISPATCH_AFTER is 15 s).
    await run_worker_until(
        lambda: (
            second.done()
            and Job.objects.filter(pk__in=[first, second.result()], status="succeeded").count() == 2
        ),
        timeout=5,
        worker_class=CrashesOnce,
    )
