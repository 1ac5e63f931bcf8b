"""Read-only questions about jobs, for pages, websockets and operators."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from workers.events import JOB_PROGRESS, job_event
from workers.models import Job, PausedChannel, WorkerProcess


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


# The operators' page and /metrics: how the last RECENT_SECONDS went.
RECENT_SECONDS = 300


def jobs_operations(now: datetime | None = None) -> dict[str, Any]:
    """What operators watch: per channel the overview, whether it is paused, and over the
    last RECENT_SECONDS its finished jobs, throughput (jobs/s) and failure rate; the workers
    alive with the job each channel of theirs runs and their last heartbeat's age."""
    now = now or timezone.now()
    channels = jobs_overview(now)
    since = now - timedelta(seconds=RECENT_SECONDS)
    recent = (
        Job.objects.filter(finished_at__gte=since)
        .values("channel", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    finished: dict[str, dict[str, int]] = {}
    for counted in recent:
        finished.setdefault(counted["channel"], {})[counted["status"]] = counted["n"]
    paused = set(PausedChannel.objects.values_list("name", flat=True))
    for channel, row in channels.items():
        counts = finished.get(channel, {})
        done = counts.get(Job.Status.SUCCEEDED, 0) + counts.get(Job.Status.FAILED, 0)
        row["paused"] = channel in paused
        row["recent"] = {status: counts.get(status, 0) for status in Job.FINISHED}
        row["throughput"] = done / RECENT_SECONDS
        row["failure_rate"] = counts.get(Job.Status.FAILED, 0) / done if done else 0.0
    alive_since = now - timedelta(seconds=settings.JOBS["STALE_AFTER"])
    workers = [
        {
            "worker": worker.worker_id,
            "channels": worker.channels,
            "running": worker.running,
            "heartbeat_age": (now - worker.heartbeat_at).total_seconds(),
        }
        for worker in WorkerProcess.objects.filter(heartbeat_at__gte=alive_since).order_by(
            "worker_id"
        )
    ]
    return {"window": RECENT_SECONDS, "channels": channels, "workers": workers}
