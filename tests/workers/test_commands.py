"""workers/management/commands/: `manage.py jobs` and `manage.py clearjobs` (`runworker` and
`runserver` run as processes: test_end_to_end.py, tests/project/test_runserver.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests import tasks
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_jobs_command_shows_counts_by_status_and_the_oldest_waiting_job() -> None:
    for _ in range(3):
        tasks.trivial.enqueue()
    Job.objects.update(run_after=timezone.now() - timedelta(seconds=90))
    (done,) = Job.objects.claim(channel="compute", worker_id="w", size=1)
    done.set_succeeded("ok")
    out = StringIO()
    call_command("jobs", "--json", stdout=out)
    overview = json.loads(out.getvalue())
    assert overview["compute"]["counts"]["queued"] == 2
    assert overview["compute"]["counts"]["succeeded"] == 1
    assert 89 <= overview["compute"]["oldest_ready_age"] < 120
    assert overview["thumbnails"]["oldest_ready_age"] is None
    table = StringIO()
    call_command("jobs", stdout=table)
    compute_row = next(line for line in table.getvalue().splitlines() if line.startswith("compute"))
    assert compute_row.split()[1:3] == ["2", "0"]  # queued, running
    assert compute_row.endswith(" s")


def test_jobs_command_lists_every_channel_when_there_are_no_jobs() -> None:
    table = StringIO()
    call_command("jobs", stdout=table)
    header, *rows = table.getvalue().splitlines()
    assert header.split() == ["channel", *Job.Status.values, "oldest", "ready"]
    assert [row.split() for row in rows] == [
        [channel, *["0"] * len(Job.Status.values), "-"] for channel in settings.WORKER_CHANNELS
    ]


def finished_job(days_ago: float) -> Job:
    return Job.objects.create(
        task_path="tests.tasks.trivial",
        channel="compute",
        time_limit=1,
        status="succeeded",
        finished_at=timezone.now() - timedelta(days=days_ago),
    )


def test_clearjobs_keeps_jobs_for_the_days_the_setting_says() -> None:
    assert settings.JOBS["KEEP_FINISHED_DAYS"] == 30
    old, recent = finished_job(31), finished_job(29)
    out = StringIO()
    call_command("clearjobs", stdout=out)
    assert out.getvalue().strip() == "deleted 1 finished job older than 30 days"
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk}
    assert not Job.objects.filter(pk=old.pk).exists()
    out = StringIO()
    call_command("clearjobs", stdout=out)
    assert out.getvalue().strip() == "deleted 0 finished jobs older than 30 days"


def test_clearjobs_refuses_negative_days_and_deletes_nothing() -> None:
    job = finished_job(1)
    with pytest.raises(CommandError, match="--days must not be negative"):
        call_command("clearjobs", "--days", "-1")
    assert Job.objects.filter(pk=job.pk).exists()


def test_jobs_cancel_retry_pause_and_resume() -> None:
    job = Job.objects.get(pk=tasks.trivial.enqueue().id)
    out = StringIO()
    call_command("jobs", "cancel", str(job.pk), stdout=out)
    assert Job.objects.get(pk=job.pk).status == "cancelled"
    assert out.getvalue() == f"job {job.pk}: cancelled\n"
    call_command("jobs", "cancel", str(job.pk), stdout=(again := StringIO()))
    assert again.getvalue() == f"job {job.pk}: left alone, it is cancelled\n"
    call_command("jobs", "retry", str(job.pk), stdout=StringIO())
    assert Job.objects.get(pk=job.pk).status == "queued"
    with pytest.raises(CommandError, match="no job with id 999999"):
        call_command("jobs", "cancel", "999999")
    call_command("jobs", "pause", "compute", stdout=StringIO())
    assert Job.objects.claim(channel="compute", worker_id="w", size=1) == []
    table = StringIO()
    call_command("jobs", stdout=table)
    assert any(
        line.startswith("compute") and line.endswith("paused")
        for line in table.getvalue().splitlines()
    )
    call_command("jobs", "resume", "compute", stdout=StringIO())
    assert [j.pk for j in Job.objects.claim(channel="compute", worker_id="w", size=1)] == [job.pk]
