"""`manage.py clearjobs`: delete finished jobs past their keeping time (run daily, like
Django's `clearsessions`; see deploy/systemd/pipeline-maintenance.service)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.services import jobs_prune


class Command(BaseCommand):
    help = (
        "Deletes finished jobs (succeeded, failed, cancelled) older than JOBS_KEEP_FINISHED_DAYS "
        "that no upload points to. Queued and running jobs are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=float,
            default=settings.JOBS["KEEP_FINISHED_DAYS"],
            help="Keep jobs finished less than this many days ago (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 0:
            raise CommandError("--days must not be negative")
        deleted = jobs_prune(older_than_days=options["days"])
        jobs = "job" if deleted == 1 else "jobs"
        self.stdout.write(f"deleted {deleted} finished {jobs} older than {options['days']:g} days")
