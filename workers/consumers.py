"""The consumer of every named channel: a wake-up makes it drain the channel's ready jobs."""

import logging
from typing import Any

from channels.consumer import AsyncConsumer, get_handler_name

from workers.events import WakeUp

logger = logging.getLogger(__name__)


class JobWorkerConsumer(AsyncConsumer):
    """Served by this project's Worker (workers/worker.py), which puts itself in the scope."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Not AsyncConsumer.dispatch, which first closes old database connections on the
        # database thread: this consumer uses the database only on its channel's own thread,
        # which looks after its connection.
        try:
            handler = getattr(self, get_handler_name(message), None)
        except ValueError:
            handler = None
        if handler is None:
            # A message of a type this channel does not know must not kill the worker.
            logger.error("channel=%s ignored message %r", self.scope["channel"], message)
            return
        await handler(message)

    async def job_wakeup(self, message: WakeUp) -> None:
        await self.scope["worker"].drain(self.scope["channel"])
