"""workers/worker.py: the Worker, on the test's own loop and channel layer: listening one
message at a time per channel, a consumer that crashed replaced, the graceful stop.

The worker as a process of its own (`runworker`, SIGTERM, a kill) is in test_end_to_end.py."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from tests import tasks
from tests.jobs import run_worker_until
from workers.models import Job
from workers.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_channel_consumer_that_crashes_is_replaced_and_the_channel_goes_on() -> None:
    crashed = asyncio.Event()

    class CrashesOnce(Worker):
        async def drain(self, channel: str) -> None:
            if not crashed.is_set():
                crashed.set()
                raise RuntimeError("the consumer's first wake-up crashes it")
            await super().drain(channel)

    first = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)

    async def enqueue_after_the_crash() -> int:
        await crashed.wait()
        return int((await database_sync_to_async(tasks.trivial.enqueue)()).id)

    second = asyncio.ensure_future(enqueue_after_the_crash())
    # Well before the sweep would send anything again (JOBS_REDISPATCH_AFTER is 15 s).
    await run_worker_until(
        lambda: (
            second.done()
            and Job.objects.filter(pk__in=[first, second.result()], status="succeeded").count() == 2
        ),
        timeout=5,
        worker_class=CrashesOnce,
    )
