"""`manage.py jobs`: per channel, jobs by status and the age of the oldest waiting one."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workers.models import Job
from workers.selectors import jobs_overview


class Command(BaseCommand):
    help = "Shows, per named channel, jobs by status and how long the oldest ready job has waited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        overview = jobs_overview()
        if options["json"]:
            self.stdout.write(json.dumps(overview, indent=2))
            return
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
            )
