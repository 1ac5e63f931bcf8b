"""workers/consumers.py: the consumer of every named channel: a wake-up drains the channel, a
message it does not know is logged and ignored."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from tests import tasks
from tests.jobs import new_worker, until
from workers.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_message_the_channel_does_not_know_is_logged_and_the_consumer_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="workers")
    worker = new_worker()
    running = asyncio.ensure_future(worker.arun())
    try:
        await until(lambda: "compute" in worker.application_instances)
        consumer = worker.application_instances["compute"]["future"]
        unknown: list[dict[str, Any]] = [{"type": "job.nonsense", "job": 1}, {"job": 2}]
        for sent, message in enumerate(unknown, start=1):
            # One at a time: a worker channel holds one message.
            await get_channel_layer().send("compute", message)

            def taken(count: int = sent) -> bool:
                return sum("ignored message" in r.getMessage() for r in caplog.records) == count

            await until(taken)
        job_id = int((await database_sync_to_async(tasks.trivial.enqueue)()).id)
        await until(lambda: Job.objects.get(pk=job_id).status == "succeeded")
        # The same consumer took all three: none of the messages killed it.
        assert worker.application_instances["compute"]["future"] is consumer
        assert not consumer.done()
    finally:
        worker.request_stop()
        await asyncio.wait_for(running, 15)
    ignored = [r.getMessage() for r in caplog.records if "ignored message" in r.getMessage()]
    assert ignored == [f"channel=compute ignored message {message!r}" for message in unknown]
    assert not [r for r in caplog.records if "consumer stopped" in r.getMessage()]
