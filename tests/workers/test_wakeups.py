"""workers/wakeups.py: the one sender of wake-ups (wake_soon, wake, wake_channel)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis
from channels.layers import channel_layers, get_channel_layer
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import receive_all, run_worker_until
from workers import events
from workers.models import Job
from workers.sender import call_from_sync
from workers.wakeups import finish_sends, wake, wake_soon

pytestmark = pytest.mark.django_db(transaction=True)


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


@pytest.mark.redis
def test_layer_calls_from_a_task_s_thread_reuse_the_process_s_redis_connections() -> None:
    layer = get_channel_layer()
    channel = call_from_sync(layer.new_channel)
    call_from_sync(layer.group_add, "from-sync", channel)
    watcher = redis.Redis.from_url(settings.REDIS_URL)
    connections_before = watcher.info("stats")["total_connections_received"]

    def task() -> None:
        for n in range(20):
            call_from_sync(layer.group_send, "from-sync", {"type": "test.message", "n": n})

    thread = threading.Thread(target=task)
    thread.start()
    thread.join(30)
    opened = watcher.info("stats")["total_connections_received"] - connections_before
    watcher.close()
    assert [call_from_sync(layer.receive, channel)["n"] for _ in range(20)] == list(range(20))
    # async_to_sync would have started a loop, and opened a connection, for each of the 20.
    assert opened <= 2


def deferred() -> Job:
    """A job not due yet: its enqueue sends no wake-up."""
    return Job.objects.get(
        pk=tasks.trivial.using(run_after=timezone.now() + timedelta(hours=1)).enqueue().id
    )


@contextmanager
def unreachable_layer() -> Iterator[None]:
    """Inside, the channel layer is a Redis that nothing listens on."""
    broken = {
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 1}]
            },
        }
    }
    with override_settings(CHANNEL_LAYERS=broken):
        channel_layers.backends.clear()
        try:
            yield
        finally:
            channel_layers.backends.clear()


def test_wake_records_woken_at_and_the_wakeup_reaches_the_channel() -> None:
    job = deferred()
    assert job.woken_at is None
    assert asyncio.run(receive_all("compute", quiet=0.2)) == []
    before = timezone.now()
    assert wake(job)
    woken_at = Job.objects.get(pk=job.pk).woken_at
    assert woken_at is not None
    assert woken_at >= before
    assert asyncio.run(receive_all("compute", quiet=0.2)) == [
        {"type": events.JOB_WAKEUP, "job": job.pk}
    ]


def test_a_layer_that_cannot_be_reached_makes_wake_return_false_and_clears_woken_at() -> None:
    job = deferred()
    # Due now, as the sweep will find it.
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now())
    job.refresh_from_db()
    with unreachable_layer():
        assert not wake(job)
    assert Job.objects.get(pk=job.pk).woken_at is None
    # So the recovery sweep sends it again.
    waiting_for = settings.JOBS["REDISPATCH_AFTER"]
    assert Job.objects.not_woken(waiting_for=waiting_for).filter(pk=job.pk).exists()


def test_a_wakeup_that_finds_the_channel_full_is_no_failure() -> None:
    due = int(tasks.trivial.enqueue().id)
    finish_sends()
    job = deferred()
    assert wake(job), "the waiting wake-up wakes a worker for this job too"
    assert Job.objects.get(pk=job.pk).woken_at is not None
    assert asyncio.run(receive_all("compute", quiet=0.2)) == [
        {"type": events.JOB_WAKEUP, "job": due}
    ]
