"""Daphne's `runserver`, which also runs the named-channel workers in-process unless told not to.

The in-memory channel layer only reaches consumers in its own process, so on the embedded
default the workers must live beside the server (as in Channels 1). With Redis, run them as
separate `runworker` processes and start the server with `--noworker`.
"""

import asyncio
import functools
from typing import Any

from channels.layers import get_channel_layer
from channels.routing import get_default_application
from daphne.management.commands.runserver import Command as DaphneRunserver
from django.conf import settings
from django.core.management.base import CommandParser

from workers.worker import Worker


class Command(DaphneRunserver):
    help = "Runs the development server, with the named-channel workers in-process."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--noworker",
            action="store_false",
            dest="run_worker",
            help="Do not run the named-channel workers in this process (use runworker).",
        )

    def inner_run(self, *args: Any, **options: Any) -> None:
        channels = settings.WORKER_CHANNELS
        if options.get("run_worker", True):
            self.stdout.write(
                f"Workers: running in this process for channels {', '.join(channels)}"
            )
            self.server_cls = functools.partial(
                DaphneRunserver.server_cls, ready_callable=self.start_workers
            )
        else:
            self.stdout.write(
                "Workers: not in this process (--noworker); start them with "
                f"`manage.py runworker {' '.join(channels)}`"
            )
        super().inner_run(*args, **options)

    def start_workers(self) -> None:
        # Called by daphne once its event loop is set, before it runs: the workers share the
        # loop, and so the in-memory channel layer, with the server.
        worker = Worker(
            application=get_default_application(),
            channels=settings.WORKER_CHANNELS,
            channel_layer=get_channel_layer(),
            handle_signals=False,
        )
        asyncio.get_event_loop().create_task(worker.arun())
