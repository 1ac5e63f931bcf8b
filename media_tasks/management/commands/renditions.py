"""`manage.py renditions --missing | --all`: queue the thumbnails job again for uploads whose
renditions are not those THUMBNAIL_SIZES and THUMBNAIL_FORMATS ask for now (--missing), or for
every upload (--all, after a change of quality), in batches, saying how far it got."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from media_tasks import selectors, services
from media_tasks.models import Upload


class Command(BaseCommand):
    help = (
        "Queues the thumbnails job of uploads whose renditions do not match the settings "
        "(--missing) or of all uploads (--all), in batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--missing",
            action="store_true",
            help="Uploads missing a rendition the settings ask for, or with one they do not.",
        )
        which.add_argument(
            "--all", action="store_true", help="Every upload (but those being processed)."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Uploads read and queued per transaction (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        total = Upload.objects.count()
        checked = queued = 0
        for batch in selectors.uploads_in_batches(batch_size=batch_size):
            chosen = [
                upload
                for upload in batch
                if (
                    selectors.renditions_idle(upload)
                    if options["all"]
                    else selectors.renditions_outdated(upload)
                )
            ]
            with transaction.atomic():
                for upload in chosen:
                    services.upload_renditions_regenerate(upload=upload)
            checked += len(batch)
            queued += len(chosen)
            self.stdout.write(f"checked {checked}/{total} uploads, queued {queued}")
        self.stdout.write(f"done: {queued} of {checked} uploads queued for new renditions")
