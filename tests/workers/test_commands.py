"""workers/management/commands/: `manage.py jobs` and `manage.py clearjobs` (`runworker` and
`runserver` run as processes: test_end_to_end.py, tests/project/test_runserver.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
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
