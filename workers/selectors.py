"""Read-only questions about jobs, for pages, websockets and operators."""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from workers.events import JOB_PROGRESS, job_event
from workers.models import Job


def jobs_unfinished_for(*, user_id: int, limit: int | None = None) -> list[dict[str, Any]]:
    """The user's queued and running jobs, oldest first, as progress events (the websocket
    snapshot); with `limit`, the newest `limit` of them."""
    jobs = Job.objects.owned_by(user_id).unfinished().order_by("-id")[:limit]
    return [dict(job_event(job, JOB_PROGRESS)) for job in reversed(jobs)]


def jobs_overview(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per channel: counts by status and the age in seconds of the oldest ready job."""
    now = now or timezone.now()

    def empty() -> dict[str, Any]:
        return {"counts": dict.fromkeys(Job.Status.values, 0), "oldest_ready_age": None}

    overview = {channel: empty() for channel in settings.WORKER_CHANNELS}
    for row in Job.objects.values("channel", "status").annotate(n=Count("id")):
        overview.setdefault(row["channel"], empty())["counts"][row["status"]] = row["n"]
    oldest = Job.objects.ready().values("channel").annotate(oldest=Min("run_after")).order_by()
    for ready in oldest:
        overview[ready["channel"]]["oldest_ready_age"] = (now - ready["oldest"]).total_seconds()
    return overview
