"""workers/schedules.py: recurring jobs, each due time enqueued once across workers and none
skipped across a stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.test import override_settings

from tests.jobs import run_worker_until
from workers.models import Job, Schedule
from workers.recover import jobs_sweep
from workers.schedules import recurring, schedules_enqueue_due

pytestmark = pytest.mark.django_db(transaction=True)

EVERY_MINUTE = {"minutely": {"task": "tests.tasks.trivial", "cron": "* * * * *"}}


def scheduled(**schedule: object) -> object:
    return override_settings(JOBS={**settings.JOBS, "SCHEDULE": schedule})


def test_each_due_time_is_enqueued_once_and_missed_ones_are_caught_up() -> None:
    start = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    with scheduled(**EVERY_MINUTE):
        assert schedules_enqueue_due(now=start) == 0  # first seen: starts from now
        assert schedules_enqueue_due(now=start + timedelta(seconds=20)) == 0
        assert schedules_enqueue_due(now=start + timedelta(seconds=40)) == 1  # 12:01
        assert schedules_enqueue_due(now=start + timedelta(seconds=50)) == 0  # once
        # No worker ran for five minutes: the due times missed are enqueued, none skipped.
        assert schedules_enqueue_due(now=start + timedelta(minutes=5, seconds=40)) == 5
    dues = sorted(Job.objects.values_list("meta__due", flat=True))
    assert dues == [f"2026-01-01T12:0{n}:00+00:00" for n in range(1, 7)]
    assert Schedule.objects.get(name="minutely").last_due_at == datetime(
        2026, 1, 1, 12, 6, tzinfo=UTC
    )


def test_a_bad_schedule_is_named() -> None:
    with (
        scheduled(broken={"task": "tests.tasks.trivial", "cron": "every day"}),
        pytest.raises(ValueError, match="JOBS\\['SCHEDULE'\\]\\['broken'\\]"),
    ):
        recurring()


async def test_the_sweep_of_a_worker_enqueues_what_is_due_and_a_worker_runs_it() -> None:
    def due_a_minute_ago() -> None:
        jobs_sweep(holder="first sight")
        Schedule.objects.update(last_due_at=datetime.now(UTC) - timedelta(minutes=1, seconds=1))

    from channels.db import database_sync_to_async

    with scheduled(**EVERY_MINUTE):
        await database_sync_to_async(due_a_minute_ago)()
        await run_worker_until(
            lambda: Job.objects.filter(meta__schedule="minutely", status="succeeded").exists()
        )
    # A minute later than last_due_at, one or (when a minute began meanwhile) two due times
    # have passed: each is enqueued once.
    dues = await database_sync_to_async(
        lambda: list(Job.objects.filter(meta__schedule="minutely").values_list("meta", flat=True))
    )()
    due_times = [meta["due"] for meta in dues]
    assert 1 <= len(due_times) <= 2
    assert len(set(due_times)) == len(due_times)


def test_the_housekeeping_is_a_recurring_job() -> None:
    (housekeeping,) = [item for item in recurring() if item.name == "housekeeping"]
    assert housekeeping.task == "project.tasks.housekeeping"
