"""`manage.py jobs`: per channel, jobs by status and the age of the oldest waiting one; and
the operators' actions: `jobs cancel ID...`, `jobs retry ID...`, `jobs pause CHANNEL`,
`jobs resume CHANNEL`."""

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.models import Job, PausedChannel
from workers.selectors import jobs_overview
from workers.services import channel_pause, channel_resume, job_cancel, job_retry


class Command(BaseCommand):
    help = (
        "Shows, per named channel, jobs by status and how long the oldest ready job has "
        "waited; cancels or retries jobs, pauses or resumes a channel."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        actions = parser.add_subparsers(dest="action")
        for name, what in (("cancel", "cancel (running ones stop)"), ("retry", "run again")):
            action = actions.add_parser(name, help=f"{what}: the jobs with these ids")
            action.add_argument("ids", nargs="+", type=int, metavar="ID")
        for name, what in (("pause", "stop claiming"), ("resume", "claim again")):
            action = actions.add_parser(name, help=f"{what} the jobs of a channel")
            action.add_argument("channel", choices=settings.WORKER_CHANNELS)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options.get("action")
        if action in {"cancel", "retry"}:
            self.change_jobs(action, options["ids"])
        elif action == "pause":
            done = channel_pause(channel=options["channel"], by="manage.py jobs")
            self.stdout.write(f"{options['channel']}: {'paused' if done else 'already paused'}")
        elif action == "resume":
            done = channel_resume(channel=options["channel"])
            self.stdout.write(f"{options['channel']}: {'resumed' if done else 'was not paused'}")
        else:
            self.overview(as_json=options["json"])

    def change_jobs(self, action: str, ids: list[int]) -> None:
        jobs = {job.pk: job for job in Job.objects.filter(pk__in=ids)}
        missing = sorted(set(ids) - jobs.keys())
        if missing:
            raise CommandError(f"no job with id {', '.join(map(str, missing))}")
        change = job_cancel if action == "cancel" else job_retry
        for pk in ids:
            job = jobs[pk]
            if change(job=job):
                self.stdout.write(f"job {pk}: {'cancelled' if action == 'cancel' else 'queued'}")
            else:
                self.stdout.write(f"job {pk}: left alone, it is {job.status}")

    def overview(self, *, as_json: bool) -> None:
        overview = jobs_overview()
        if as_json:
            self.stdout.write(json.dumps(overview, indent=2))
            return
        paused = set(PausedChannel.objects.values_list("name", flat=True))
        statuses = list(Job.Status.values)
        header = (
            f"{'channel':<16}" + "".join(f"{s:>11}" for s in statuses) + f"{'oldest ready':>15}"
        )
        self.stdout.write(header)
        for channel, row in overview.items():
            age = row["oldest_ready_age"]
            self.stdout.write(
                f"{channel:<16}"
                + "".join(f"{row['counts'][s]:>11}" for s in statuses)
                + f"{'-' if age is None else f'{age:.1f} s':>15}"
                + ("  paused" if channel in paused else "")
            )
