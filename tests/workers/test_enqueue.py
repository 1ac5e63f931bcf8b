"""workers/enqueue.py: a job's row is written in the caller's transaction, its wake-up sent
after the commit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.tasks import TaskResultStatus
from django.test import override_settings
from django.utils import timezone

from tests import tasks
from tests.jobs import receive_all
from tests.processes import wait_for
from workers.backends import enqueue_for
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_enqueue_records_the_job_and_wakes_a_worker_only_after_commit(user: Any) -> None:
    with transaction.atomic():
        with enqueue_for(owner=user, upload=7):
            result = tasks.trivial.enqueue(marks="")
        job = Job.objects.get(pk=result.id)
        assert job.status == "queued"
        assert asyncio.run(receive_all("compute", quiet=0.2)) == []
    assert asyncio.run(receive_all("compute", quiet=0.2)) == [{"type": "job.wakeup", "job": job.pk}]
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
    assert asyncio.run(receive_all("compute", quiet=0.2)) == []


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


def test_a_deferred_job_gets_no_wakeup_at_enqueue() -> None:
    # The recovery sweep wakes it once its time comes (test_recover.py).
    result = tasks.trivial.using(run_after=timezone.now() + timedelta(minutes=5)).enqueue()
    assert asyncio.run(receive_all("compute", quiet=0.2)) == []
    job = Job.objects.get(pk=result.id)
    assert (job.status, job.woken_at) == ("queued", None)
    assert job.run_after > job.enqueued_at
