"""`manage.py autoscale`: one pass of the worker autoscaler on this host (workers/autoscale.py);
deploy/systemd/pipeline-autoscale.timer runs it every few seconds."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers.autoscale import Policy, Systemctl, autoscale_apply


class Command(BaseCommand):
    help = (
        "Starts and stops pipeline-worker@<channel>-<n> units on this host from each channel's "
        "queue (the age of its oldest ready job, its ready count), between AUTOSCALE_MIN_INSTANCES "
        "and AUTOSCALE_MAX_INSTANCES."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "channels",
            nargs="*",
            help="The channels to scale (default: AUTOSCALE_CHANNELS).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would change, change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        channels = options["channels"] or settings.AUTOSCALE_CHANNELS
        unknown = sorted(set(channels) - set(settings.WORKER_CHANNELS))
        if unknown:
            raise CommandError(
                f"no channel {', '.join(map(repr, unknown))} "
                f"(the named channels are: {', '.join(settings.WORKER_CHANNELS)})"
            )
        try:
            policy = Policy.from_settings(settings.AUTOSCALE)
        except ValueError as error:
            raise CommandError(str(error)) from None
        changes = autoscale_apply(
            channels=channels, policy=policy, units=Systemctl(), dry_run=options["dry_run"]
        )
        for change in changes:
            self.stdout.write(
                f"{change.queue.channel}: {change.current} -> {change.target} instances"
                + (f", started {', '.join(change.started)}" if change.started else "")
                + (f", stopped {', '.join(change.stopped)}" if change.stopped else "")
            )
