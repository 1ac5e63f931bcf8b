"""Channels' `runworker`, with this project's worker: back-pressure, recovery, graceful stop."""

from channels.management.commands.runworker import Command as ChannelsRunworker

from workers.worker import Worker


class Command(ChannelsRunworker):
    worker_class = Worker
